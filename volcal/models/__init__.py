"""Volatility models: one file per family, each owning its calibration spec (see base.py).

``PUBLISHED_MODEL`` (eSSVI) is the model the refresh job publishes by default: free of
butterfly and calendar arbitrage by construction, and close to raw SVI's fit quality.
"""

from volcal.models.base import Model, SliceSpec, SurfaceSpec
from volcal.models.essvi import ESSVI
from volcal.models.heston import Heston
from volcal.models.sabr import SABR
from volcal.models.ssvi import SSVI
from volcal.models.svi import SVI

PUBLISHED_MODEL = ESSVI
#: Every model by its class name, as the store and the refresh configuration name them.
MODELS = {model.__name__: model for model in (ESSVI, SSVI, SVI, SABR, Heston)}

__all__ = [
    "ESSVI",
    "MODELS",
    "PUBLISHED_MODEL",
    "SABR",
    "SSVI",
    "SVI",
    "Heston",
    "Model",
    "SliceSpec",
    "SurfaceSpec",
]

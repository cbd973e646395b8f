"""Volatility models: one file per family, each owning its calibration spec (see base.py)."""

from volcal.models.base import Model, SliceSpec, SurfaceSpec
from volcal.models.sabr import SABR
from volcal.models.ssvi import SSVI
from volcal.models.svi import SVI

__all__ = ["SABR", "SSVI", "SVI", "Model", "SliceSpec", "SurfaceSpec"]

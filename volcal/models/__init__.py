"""Volatility models: one file per family, each owning its calibration spec (see base.py)."""

from volcal.models.base import Model, SliceSpec
from volcal.models.svi import SVI

__all__ = ["SVI", "Model", "SliceSpec"]

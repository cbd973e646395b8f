"""Volatility models: one file per family, each owning its calibration spec (see base.py)."""

from volcal.models.base import Model

__all__ = ["Model"]

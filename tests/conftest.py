"""Shared test configuration: volcal's float64 setting, the real-data folder, the reference set."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

import volcal  # noqa: F401  (switches JAX to float64, as every volcal user gets it)

DATA = Path(__file__).parent / "data"


def pytest_configure(config):
    assert jax.config.jax_enable_x64, "volcal must switch JAX to float64 on import"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real market data folder (``VOLCAL_SHARED_DATA``, default ``../shared/data``).

    Missing data skip the test locally and fail it in CI (``CI=true``)."""
    root = Path(__file__).resolve().parents[1]
    path = Path(os.environ.get("VOLCAL_SHARED_DATA", root.parent / "shared" / "data"))
    if not path.is_dir():
        message = f"shared market data not found at {path} (set VOLCAL_SHARED_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path

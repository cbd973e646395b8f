"""Shared test configuration: volcal's float64 setting, the real-data folder, the reference set."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

import volcal  # switches JAX to float64, as every volcal user gets it

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


@pytest.fixture(scope="session")
def snapshot_files(shared_data) -> list[Path]:
    """The five Deribit snapshot CSVs (BTC and ETH chains)."""
    files = sorted((shared_data / "raw" / "deribit_svcj_snapshots").glob("*.csv"))
    assert len(files) == 5, files
    return files


@pytest.fixture(scope="session")
def snapshot_essvi_fits(snapshot_files) -> dict:
    """eSSVI (the published model) on every snapshot file and currency, fitted once per test
    session: ``{(file stem, currency): Calibration}``."""
    from volcal.sources.files import read_deribit_snapshot

    fits = {}
    for path in snapshot_files:
        chain = read_deribit_snapshot(path)
        for currency in ("BTC", "ETH"):
            grid = volcal.clean(chain, underlying=currency)
            fits[path.stem, currency] = volcal.calibrate(volcal.models.ESSVI, grid)
    return fits


@pytest.fixture(scope="session")
def demo_grid():
    """The demo market's grid (default snapshot)."""
    from volcal.sources.demo import demo_chain

    return volcal.clean(demo_chain())


@pytest.fixture(scope="session")
def demo_essvi_fit(demo_grid):
    return volcal.calibrate(volcal.models.ESSVI, demo_grid)

"""The volcal command, the demo market and the one global setting."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
from typer.testing import CliRunner

import volcal as vc
from volcal._config import CACHE_DIR_ENV, cache_dir
from volcal.cli import app

runner = CliRunner()


def test_help_lists_the_subcommands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("refresh", "show", "calibrate", "margin", "report", "demo", "clean", "iv",
                    "version", "backfill", "calibrate-margin", "backtest", "stress"):
        assert command in result.output


def test_demo_cleans_the_demo_chain():
    result = runner.invoke(app, ["demo"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "input rows" in result.output and "kept" in result.output
    assert "2026-12-25" in result.output
    # The demo surface is an arbitrage-free SSVI: every model's fit is listed.
    for model in ("eSSVI", "raw SVI", "SSVI", "SABR", "Heston"):
        assert model in result.output


def test_clean_command_on_a_real_snapshot(shared_data):
    path = next((shared_data / "raw" / "deribit_svcj_snapshots").glob("*.csv"))
    result = runner.invoke(
        app,
        ["clean", str(path), "--format", "deribit", "--underlying", "ETH"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "deribit ETH" in result.output and "in the money" in result.output
    bad = runner.invoke(app, ["clean", str(path), "--format", "nope"])
    assert bad.exit_code == 2 and "unknown format" in bad.output


def test_iv_command_and_its_error():
    price = float(vc.black_price(60_000.0, 65_000.0, 0.1, 0.55, True))
    ok = runner.invoke(
        app, ["iv", "--price", repr(price), "--forward", "60000", "--strike", "65000", "--t", "0.1"]
    )
    assert ok.exit_code == 0 and abs(float(ok.output) - 0.55) < 1e-11
    bad = runner.invoke(
        app,
        ["iv", "--price", "-1", "--forward", "60000", "--strike", "65000", "--t", "0.1", "--put"],
    )
    assert bad.exit_code == 1 and "BELOW_INTRINSIC" in bad.output


def test_float64_is_on():
    assert jax.config.jax_enable_x64
    assert vc.black_price(100.0, 100.0, 1.0, 0.2, True).dtype == np.float64


def test_compilation_cache_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, "")
    assert cache_dir() is None


def test_a_new_process_writes_the_persistent_cache(tmp_path):
    env = dict(os.environ, VOLCAL_CACHE_DIR=str(tmp_path))
    code = (
        "import volcal as vc, jax; "
        "assert jax.config.jax_persistent_cache_min_compile_time_secs == 0; "
        "vc.implied_vol(1.0, 100.0, 100.0, 1.0, True).vol.block_until_ready()"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    assert any(tmp_path.iterdir()), "no compiled program was cached"


def test_fetch_command_replays_a_recording_and_refuses_unknowns():
    from pathlib import Path

    cassette = Path(__file__).parent / "fixtures" / "venues" / "deribit_btc_success.json"
    ok = runner.invoke(app, ["fetch", "--venue", "deribit", "--underlying", "BTC", "--replay",
                             str(cassette)], env={"COLUMNS": "200"})  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "deribit BTC" in ok.output and "synthetic_future" in ok.output
    unknown = runner.invoke(app, ["fetch", "--venue", "deribit", "--underlying", "DOGE",
                                  "--replay", str(cassette)])  # fmt: skip
    assert unknown.exit_code == 2 and "underlyings with options: BTC" in unknown.output
    venue = runner.invoke(app, ["fetch", "--venue", "kraken", "--underlying", "BTC"])
    assert venue.exit_code == 2 and "supported venues" in venue.output


def test_load_chain_dispatches_by_source(shared_data, tmp_path):
    import pytest

    assert vc.load_chain("demo").frame["venue"].eq("demo").all()
    path = shared_data / "raw" / "spx_cboe_20110124" / "SPX-Options-24jan2011.csv"
    assert len(vc.load_chain(path, format="cboe")) == 1920
    with pytest.raises(ValueError, match="format="):
        vc.load_chain(path)
    with pytest.raises(ValueError, match="underlying="):
        vc.load_chain("deribit")
    with pytest.raises(ValueError, match="neither"):
        vc.load_chain(tmp_path / "missing.csv")

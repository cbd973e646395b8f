"""``volcal refresh``, ``show`` and ``calibrate`` end to end: the demo market, every real
snapshot file (CSV source), reruns, configuration errors, one failing chain among good ones,
rejections and the exit-code table."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from volcal.cli import app
from volcal.refresh import ExitCode, Outcome, exit_code
from volcal.store import Store

runner = CliRunner()


def refresh(*args, workers=1):
    """``volcal refresh ARGS``, calibrating in this process unless ``workers`` > 1 (worker
    processes start their own JAX runtime: slower for small tests)."""
    return runner.invoke(app, ["refresh", *map(str, args), "--workers", str(workers)])


def text(result) -> str:
    """The command's output with table cells' line wraps undone."""
    return " ".join(result.output.split())


def test_demo_refresh_stores_show_lists_and_rerun_is_idempotent(tmp_path):
    store = tmp_path / "store.sqlite"
    result = refresh("--store", store, "--models", "ESSVI,SVI")
    assert result.exit_code == ExitCode.OK, result.output
    with Store(store) as opened:
        history = opened.history()
        assert sorted(history["model"]) == ["ESSVI", "SVI"]
        assert (history["status"] == "accepted").all()
        assert opened.latest("demo", "BTC").model == "ESSVI"
    events = [
        json.loads(line) for line in (tmp_path / "refresh.log.jsonl").read_text().splitlines()
    ]
    assert [e["event"] for e in events] == ["stored", "stored"]
    assert {"time", "venue", "underlying", "model", "surface_id", "rmse"} <= set(events[0])
    again = refresh("--store", store, "--models", "ESSVI,SVI")
    assert again.exit_code == ExitCode.OK and "stored before for these snapshots" in text(again)
    with Store(store) as opened:
        pd.testing.assert_frame_equal(opened.history(), history)
    shown = runner.invoke(app, ["show", "--store", str(store)])
    assert shown.exit_code == 0 and "ESSVI (published)" in text(shown) and "accepted" in text(shown)
    detail = runner.invoke(app, ["show", "--store", str(store), "--id", history["id"][0]])
    assert detail.exit_code == 0 and "parameters" in text(detail)


def test_every_snapshot_file_publishes_btc_and_eth(tmp_path, snapshot_files):
    """All five Deribit snapshot files through the CSV source: the published eSSVI accepted
    for BTC and ETH on every file; raw SVI and SABR stored with their gate outcome. (All
    models, Heston included: ``python benchmarks/refresh_snapshots.py``.)"""
    config = tmp_path / "refresh.toml"
    chains = "\n".join(
        f'[[chains]]\nvenue = "deribit"\nunderlying = ["BTC", "ETH"]\n'
        f'source = "{path}"\nformat = "deribit"\n'
        for path in snapshot_files
    )
    config.write_text(
        f'store = "{tmp_path / "store.sqlite"}"\nmodels = ["ESSVI", "SVI", "SABR"]\n{chains}'
    )
    result = refresh("--config", config)
    assert result.exit_code in (ExitCode.OK, ExitCode.PARTIAL_FAILURE), result.output
    with Store(tmp_path / "store.sqlite") as store:
        history = store.history()
        published = history[history["model"] == "ESSVI"]
        assert len(published) == 10 and (published["status"] == "accepted").all(), published
        assert len(history) == 30
        others = history[history["model"] != "ESSVI"]
        assert set(others["status"]) <= {"accepted", "rejected"}
        assert (others[others["status"] == "rejected"]["reasons"] != "").all()
        for currency in ("BTC", "ETH"):
            latest = store.latest("deribit", currency)
            assert latest.snapshot == published["snapshot"].max()
    assert result.exit_code == ExitCode.OK  # every published model accepted
    shown = runner.invoke(app, ["show", "--store", str(tmp_path / "store.sqlite"), "--limit", "40"])
    assert shown.exit_code == 0 and text(shown).count("ESSVI (published)") == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--underlying", "../x"], "underlying '../x' is not a valid name"),
        (["--models", "ESSVI,Vanna"], "unknown model 'Vanna'"),
        (
            ["--source", "nowhere.csv", "--venue", "deribit", "--underlying", "BTC"],
            "not 'live', 'demo'",
        ),
        (["--venue", "kraken", "--underlying", "BTC"], "venue 'kraken' is not one of"),
    ],
)
def test_configuration_errors_exit_2_and_run_nothing(tmp_path, args, message):
    store = tmp_path / "store.sqlite"
    result = refresh("--store", store, *args)
    assert result.exit_code == ExitCode.CONFIG_ERROR, result.output
    assert message in text(result)
    assert not store.exists() or Store(store).history().empty


def test_bad_config_files_and_stores_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [ESSVI")
    assert "not valid TOML" in text(refresh("--config", bad))
    bad.write_text('modles = ["ESSVI"]')
    result = refresh("--config", bad, "--store", tmp_path / "s.sqlite")
    assert result.exit_code == ExitCode.CONFIG_ERROR and "unknown configuration key" in text(result)
    bad.write_text("[gate.ESSVI]\nmax_rmse = 2.0")
    result = refresh("--config", bad, "--store", tmp_path / "s.sqlite")
    assert result.exit_code == ExitCode.CONFIG_ERROR and "unknown gate limit" in text(result)
    not_a_db = tmp_path / "notes.sqlite"
    not_a_db.write_text("hello" * 1000)
    result = refresh("--store", not_a_db, "--dry-run")
    assert result.exit_code == ExitCode.CONFIG_ERROR and "not a volcal store" in text(result)
    dry = refresh("--store", tmp_path / "dry.sqlite", "--dry-run")
    assert dry.exit_code == 0 and "nothing was run" in text(dry)
    assert Store(tmp_path / "dry.sqlite").history().empty


def test_one_failing_chain_does_not_stop_the_others(tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("instrument_name,price\nBTC-X,1\n")
    config = tmp_path / "refresh.toml"
    config.write_text(
        f'store = "{tmp_path / "store.sqlite"}"\nmodels = ["ESSVI"]\n'
        f'[[chains]]\nvenue = "deribit"\nunderlying = "BTC"\nsource = "{broken}"\n'
        '[[chains]]\nvenue = "demo"\nunderlying = "BTC"\nsource = "demo"\n'
    )
    result = refresh("--config", config)
    assert result.exit_code == ExitCode.PARTIAL_FAILURE, result.output
    assert "failed" in text(result)
    with Store(tmp_path / "store.sqlite") as store:
        assert store.latest("demo", "BTC").accepted
    events = [
        json.loads(line) for line in (tmp_path / "refresh.log.jsonl").read_text().splitlines()
    ]
    assert events[0]["event"] == "chain_failed" and events[0]["error"]


def test_rejected_published_model_is_a_partial_failure_and_keeps_the_previous(tmp_path):
    store = tmp_path / "store.sqlite"
    assert (
        refresh(
            "--store", store, "--models", "ESSVI,SVI", "--snapshot", "2026-01-14T09:30:00Z"
        ).exit_code
        == ExitCode.OK
    )
    config = tmp_path / "strict.toml"
    config.write_text(
        f'store = "{store}"\nmodels = ["ESSVI", "SVI"]\n[gate.ESSVI]\nmax_rmse_vol_points = 0.01\n'
    )
    result = refresh("--config", config, "--snapshot", "2026-01-15T09:30:00Z")
    assert result.exit_code == ExitCode.PARTIAL_FAILURE, result.output
    with Store(store) as opened:
        latest = opened.latest("demo", "BTC")
        assert latest.snapshot == pd.Timestamp("2026-01-14T09:30:00Z")
        rejected = opened.history(model="ESSVI", status="rejected")
        assert len(rejected) == 1 and rejected["reasons"][0] == "rmse"
        # SVI was warm-started from the day before and accepted.
        assert opened.latest("demo", "BTC", model="SVI").snapshot == pd.Timestamp(
            "2026-01-15T09:30:00Z"
        )
    config.write_text(
        f'store = "{store}"\nmodels = ["ESSVI"]\n[gate.ESSVI]\nmax_rmse_vol_points = 0.01\n'
    )
    nothing = refresh("--config", config, "--snapshot", "2026-01-16T09:30:00Z")
    assert nothing.exit_code == ExitCode.FAILED, nothing.output


def test_exit_code_table():
    def outcome(model, published, status):
        return Outcome("v", "BTC", model, published, status)

    assert exit_code([outcome("ESSVI", True, "accepted"), outcome("SVI", False, "rejected")]) == 0
    assert exit_code([outcome("ESSVI", True, "rejected"), outcome("SVI", False, "accepted")]) == 3
    assert exit_code([outcome("ESSVI", True, "accepted"), outcome("(chain)", True, "failed")]) == 3
    assert exit_code([outcome("ESSVI", True, "rejected"), outcome("SVI", False, "failed")]) == 4


def test_calibrate_command_prints_and_saves(tmp_path):
    store = tmp_path / "store.sqlite"
    result = runner.invoke(
        app, ["calibrate", "demo", "--model", "SVI", "--save", "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    assert "RMSE" in text(result) and "stored as" in text(result)
    assert Store(store).latest("demo", "BTC", model="SVI").accepted


def test_worker_processes_give_the_same_surfaces(tmp_path):
    """Calibrating in two spawned worker processes stores what calibrating in this process
    stores: same models, verdicts and parameters (to the last bit)."""
    stores = {}
    for workers in (1, 2):
        stores[workers] = tmp_path / f"store{workers}.sqlite"
        result = refresh("--store", stores[workers], "--models", "ESSVI,SVI", workers=workers)
        assert result.exit_code == ExitCode.OK, result.output
    with Store(stores[1]) as one, Store(stores[2]) as two:
        for model in ("ESSVI", "SVI"):
            a, b = one.latest("demo", "BTC", model=model), two.latest("demo", "BTC", model=model)
            assert a.record["parameters"] == b.record["parameters"]
            assert a.status == b.status


def test_replayed_venue_cassette_goes_through_to_the_store(tmp_path):
    """``--source replay:CASSETTE``: the recorded Deribit responses go through ccxt's parsers,
    cleaning, calibration and the gate; the cassette's two quotes are too few, so both models
    are stored as rejected for that reason and nothing is accepted (exit 4)."""
    from pathlib import Path

    cassette = Path(__file__).parent / "fixtures" / "venues" / "deribit_btc_success.json"
    store = tmp_path / "store.sqlite"
    result = refresh("--store", store, "--source", f"replay:{cassette}", "--venue", "deribit",
                     "--underlying", "BTC", "--models", "ESSVI,SVI")  # fmt: skip
    assert result.exit_code == ExitCode.FAILED, result.output
    with Store(store) as opened:
        history = opened.history("deribit", "BTC")
        assert sorted(history["model"]) == ["ESSVI", "SVI"]
        assert (history["status"] == "rejected").all()
        assert (history["reasons"] == "too_few_quotes").all()

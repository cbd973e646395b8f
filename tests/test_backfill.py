"""``volcal backfill`` on a small multi-snapshot file cut from the shared Deribit history (three
real BTC snapshots and one broken one): one process and a Dask cluster give the same surfaces,
a bad snapshot is recorded without stopping the run, reruns skip what is stored."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from volcal.backfill import BackfillError, run_backfill
from volcal.cli import app
from volcal.store import Store

#: Surfaces from one process and from the cluster are the same computations: they agree to
#: this, in decimal vol, on the comparison grid.
AGREEMENT = 1e-10
GRID_K = np.linspace(-0.3, 0.3, 13)
GRID_DAYS = np.array([7.0, 30.0, 90.0])


@pytest.fixture(scope="module")
def history_file(shared_data, tmp_path_factory):
    """Three consecutive BTC snapshots of March 2026, and a fourth (one hour after the third)
    whose quotes are all missing."""
    month = shared_data / "deribit_history" / "deribit_options_2026-03.parquet"
    rows = pd.read_parquet(month, filters=[("currency", "==", "BTC")])
    stamps = sorted(rows["timestamp"].unique())[:3]
    good = rows[rows["timestamp"].isin(stamps)]
    broken = good[good["timestamp"] == stamps[-1]].copy()
    broken["timestamp"] = stamps[-1] + pd.Timedelta(hours=1)
    broken[["bid_price", "ask_price", "mark_price", "mid_price"]] = np.nan
    path = tmp_path_factory.mktemp("history") / "btc_march.parquet"
    pd.concat([good, broken]).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def in_process(history_file, tmp_path_factory):
    path = tmp_path_factory.mktemp("one") / "volcal.sqlite"
    summary = run_backfill(history_file, store=path, underlyings=["BTC"], block_size=2,
                           workers=0)  # fmt: skip
    return path, summary


def surfaces(path):
    with Store(path) as store:
        table = store.history(underlying="BTC").sort_values("snapshot")
        return {row.snapshot: (row.status, store.get(row.id).surface) for row in
                table.itertuples()}  # fmt: skip


def test_bad_snapshot_is_recorded_and_the_run_goes_on(in_process):
    path, summary = in_process
    assert summary.counts.loc[("BTC", "ESSVI")].to_dict() == {
        "accepted": 3, "rejected": 0, "failed": 0, "skipped": 0,
    }  # fmt: skip
    assert summary.counts.loc[("BTC", "(chain)"), "failed"] == 1
    (failure,) = summary.failures
    assert failure.stage == "chain" and failure.error
    with Store(path) as store:
        recorded = store.failures("deribit", "BTC")
        assert len(recorded) == 1 and recorded["snapshot"].iloc[0] == failure.snapshot
        # Every stored snapshot records its spot, read from one consistent moment.
        assert len(store.snapshot_spots("deribit", "BTC")) == 3


def test_one_process_and_the_dask_cluster_agree(in_process, history_file, tmp_path):
    pytest.importorskip("dask.distributed")
    path = tmp_path / "cluster.sqlite"
    summary = run_backfill(history_file, store=path, underlyings=["BTC"], block_size=2,
                           workers=2)  # fmt: skip
    assert summary.counts.equals(in_process[1].counts)
    one, cluster = surfaces(in_process[0]), surfaces(path)
    assert list(one) == list(cluster)
    kk, dd = np.meshgrid(GRID_K, GRID_DAYS)
    for snapshot, (status, surface) in one.items():
        assert cluster[snapshot][0] == status
        a = np.asarray(surface.implied_vol_at(kk, dd / 365.0))
        b = np.asarray(cluster[snapshot][1].implied_vol_at(kk, dd / 365.0))
        assert np.max(np.abs(a - b)) <= AGREEMENT, (snapshot, np.max(np.abs(a - b)))


def test_reruns_skip_stored_and_failed_snapshots(in_process, history_file):
    path, _ = in_process
    with Store(path) as store:
        before = len(store.history())
    again = run_backfill(history_file, store=path, underlyings=["BTC"], workers=0)
    assert again.counts.loc[("BTC", "ESSVI"), "skipped"] == 4  # 3 stored + 1 failed before
    assert again.counts[["accepted", "rejected", "failed"]].to_numpy().sum() == 0
    with Store(path) as store:
        assert len(store.history()) == before


def test_resumes_where_a_run_stopped(history_file, tmp_path):
    path = tmp_path / "volcal.sqlite"
    stamps = pd.read_parquet(history_file, columns=["timestamp"])["timestamp"].unique()
    first = run_backfill(history_file, store=path, underlyings=["BTC"], workers=0,
                         end=sorted(stamps)[0])  # fmt: skip
    assert first.counts.loc[("BTC", "ESSVI"), "accepted"] == 1
    rest = run_backfill(history_file, store=path, underlyings=["BTC"], workers=0,
                        end=sorted(stamps)[1])  # fmt: skip
    assert rest.counts.loc[("BTC", "ESSVI")].to_dict() == {
        "accepted": 1, "rejected": 0, "failed": 0, "skipped": 1,
    }  # fmt: skip


def test_without_dask_the_message_names_the_extra(history_file, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith("dask"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(BackfillError, match=r"volcal\[distributed\]"):
        run_backfill(history_file, store=tmp_path / "s.sqlite", underlyings=["BTC"], workers=2)


def test_cli_backfill_exits_3_on_a_failed_snapshot_then_0_when_resumed(history_file, tmp_path):
    store = str(tmp_path / "volcal.sqlite")
    command = ["backfill", "--source", str(history_file), "--underlying", "BTC", "--workers", "0",
               "--block-size", "4", "--store", store]  # fmt: skip
    first = CliRunner().invoke(app, command)
    assert first.exit_code == 3, first.output
    assert "failed: BTC" in first.output and "no quote survived cleaning" in first.output
    # Everything is stored or recorded now: nothing new fails.
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0, again.output
    bad = CliRunner().invoke(app, ["backfill", "--source", "/no/such/history", "--workers", "0"])
    assert bad.exit_code == 2 and "no snapshot history" in bad.output


CRASH = """
import os, signal, sys
from volcal.backfill import run_backfill
from volcal.store import Store


class Crashing(Store):
    written = 0

    def _checkpoint(self, name):
        # SIGKILL in the middle of the second surface's write transaction.
        if name == "surface_written":
            Crashing.written += 1
            if Crashing.written == 2:
                os.kill(os.getpid(), signal.SIGKILL)


run_backfill(sys.argv[1], store=Crashing(sys.argv[2]), underlyings=["BTC"], workers=0,
             block_size=1)
"""


def test_a_backfill_killed_part_way_and_restarted_completes_without_duplicates_or_loss(
    history_file, tmp_path
):
    import subprocess
    import sys

    path = tmp_path / "volcal.sqlite"
    killed = subprocess.run([sys.executable, "-c", CRASH, str(history_file), str(path)],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]
    with Store(path) as store:
        assert len(store.history()) == 1  # the second write never committed
    summary = run_backfill(history_file, store=path, underlyings=["BTC"], workers=0)
    assert summary.counts.loc[("BTC", "ESSVI"), "skipped"] == 1
    with Store(path) as store:
        stored = store.history()
        assert stored["snapshot"].is_unique and len(stored) == 3
        assert len(store.failures()) == 1  # the broken snapshot, recorded once

"""Speed of ``volcal.arbitrage.check`` on a Heston fit to the demo market, warm.

Fits ``calibrate(Heston, grid, throw=False)`` to the demo market (``volcal demo``'s grid: 10
expiries from 1 day to about a year), then times ``check(model, grid.forward, grid.t)``: the
first call in this process (tracing; compilation unless ``VOLCAL_CACHE_DIR`` holds it) and the
median of ``--repeats`` warm calls. With ``--baseline FILE`` (another version of
volcal/arbitrage.py, e.g. ``git show af35274:volcal/arbitrage.py > /tmp/old_arbitrage.py``)
its ``check`` is timed too, the warm calls of the two interleaved so that both see the same
machine load.

Run: ``python benchmarks/bench_arbitrage_check.py [--repeats 7] [--baseline FILE]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np

import volcal as vc
from volcal import arbitrage
from volcal.models import Heston
from volcal.sources.demo import demo_chain


def load(path: str):
    spec = importlib.util.spec_from_file_location("baseline_arbitrage", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", help="another arbitrage.py to time beside this one")
    options = parser.parse_args()

    grid = vc.clean(demo_chain())
    model = vc.calibrate(Heston, grid, throw=False).model
    print("Heston fit:", {n: round(float(getattr(model, n)), 4) for n in model.__annotations__})
    checks = {"volcal.arbitrage": arbitrage.check}
    if options.baseline:
        checks["baseline"] = load(options.baseline).check
    times = {name: [] for name in checks}
    for name, check in checks.items():
        started = time.perf_counter()
        report = check(model, grid.forward, grid.t)
        print(f"{name}: first call {time.perf_counter() - started:.2f} s; {report.summary()}")
    for _ in range(options.repeats):
        for name, check in checks.items():
            started = time.perf_counter()
            check(model, grid.forward, grid.t)
            times[name].append(time.perf_counter() - started)
    for name, values in times.items():
        print(f"{name}: warm median {np.median(values):.3f} s "
              f"(min {min(values):.3f}, max {max(values):.3f}, {len(values)} calls)")  # fmt: skip
    if options.baseline:
        ratio = np.median(times["baseline"]) / np.median(times["volcal.arbitrage"])
        print(f"speed-up, baseline / volcal.arbitrage (warm medians): {ratio:.1f}x")


if __name__ == "__main__":
    main()

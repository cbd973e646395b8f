"""The one global setting volcal makes: JAX in float64, with a persistent compilation cache.

Importing :mod:`volcal` runs :func:`configure_jax` once. It

* switches JAX to 64-bit floats (``jax_enable_x64``). Prices of far out-of-the-money options,
  implied-volatility inversion and calibration residuals need float64: float32 cannot resolve
  much below 1e-7 relative. This is the only process-wide setting volcal changes, and it affects
  every JAX user in the same process (JAX has no per-library precision switch);
* turns on JAX's persistent compilation cache in ``$VOLCAL_CACHE_DIR`` (default
  ``~/.cache/volcal/jax``) with a minimum compile time of 0 s, so that small programs (a single
  smile fit, an implied-vol call) are cached as well and a new process skips recompilation.
  The cache is trusted code: do not point it at a folder other users can write to.

Set ``VOLCAL_CACHE_DIR`` to an empty string to leave the cache off.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

CACHE_DIR_ENV = "VOLCAL_CACHE_DIR"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "volcal" / "jax"


def cache_dir() -> Path | None:
    """The persistent compilation cache folder, or ``None`` when it is switched off."""
    value = os.environ.get(CACHE_DIR_ENV)
    if value is None:
        return DEFAULT_CACHE_DIR
    if value.strip() == "":
        return None
    return Path(value).expanduser()


def configure_jax() -> None:
    """Switch JAX to float64 and point its persistent compilation cache at :func:`cache_dir`."""
    jax.config.update("jax_enable_x64", True)
    directory = cache_dir()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(directory))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

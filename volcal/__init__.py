"""volcal: option chains to calibrated volatility surfaces and portfolio margin.

Importing volcal switches JAX to float64 and turns on its persistent compilation cache; see
:mod:`volcal._config`. That is the one global setting volcal makes.
"""

from volcal._config import configure_jax

configure_jax()

from volcal.black import (  # noqa: E402
    black_delta,
    black_gamma,
    black_greeks,
    black_price,
    black_theta,
    black_vanna,
    black_vega,
    black_volga,
    normalised_black,
)
from volcal.calibrate import Calibration, CalibrationError, calibrate  # noqa: E402
from volcal.chain import Chain  # noqa: E402
from volcal.clean import CleaningReport, CleanOptions, IVGrid, clean  # noqa: E402
from volcal.implied import ImpliedVol, IVStatus, implied_vol  # noqa: E402
from volcal.margin import margin  # noqa: E402  (the function; submodules: volcal.margin.*)
from volcal.sources import load_chain  # noqa: E402
from volcal.store import Store  # noqa: E402
from volcal.surface import VolSurface  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Calibration",
    "CalibrationError",
    "Chain",
    "CleanOptions",
    "CleaningReport",
    "IVGrid",
    "IVStatus",
    "ImpliedVol",
    "Store",
    "VolSurface",
    "__version__",
    "black_delta",
    "black_gamma",
    "black_greeks",
    "black_price",
    "black_theta",
    "black_vanna",
    "black_vega",
    "black_volga",
    "calibrate",
    "clean",
    "implied_vol",
    "load_chain",
    "margin",
    "normalised_black",
]

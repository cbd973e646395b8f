"""Where chains come from: venue adapters on ccxt, record/replay, file importers, the demo market.

:func:`load_chain` is the one entry point: ``load_chain("demo")``, ``load_chain("deribit",
underlying="BTC")`` (live, or ``replay=cassette``), ``load_chain(path, format="cboe")``.
"""

from __future__ import annotations

import os
from pathlib import Path

from volcal.chain import Chain

#: Environment variable naming the shared market-data folder (see :func:`shared_data`).
SHARED_DATA_VARIABLE = "VOLCAL_SHARED_DATA"


def shared_data(*parts: str) -> Path:
    """A path in the shared market-data folder: ``$VOLCAL_SHARED_DATA``, else ``shared/data``
    beside a volcal checkout (``../shared/data`` from the repository root).

    Raises ``FileNotFoundError`` naming the variable when the folder (or ``parts``) is missing.
    """
    configured = os.environ.get(SHARED_DATA_VARIABLE)
    checkout = Path(__file__).resolve().parents[3] / "shared" / "data"
    root = Path(configured) if configured else checkout
    path = root.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"shared market data not found at {path}: set {SHARED_DATA_VARIABLE} to the "
            f"folder holding raw/, deribit_history/ and spot_history/"
        )
    return path


#: File layouts :func:`load_chain` reads, by name.
FILE_FORMATS = ("deribit", "deribit-2020", "cboe", "tardis")


def load_chain(source: str | Path, **options) -> Chain:
    """A :class:`~volcal.chain.Chain` from a venue, a file or the demo market.

    Parameters
    ----------
    source : str or Path
        ``"demo"``; a venue name (``deribit``, ``okx``, ``bybit``, ``binance``: options go to
        :func:`volcal.sources.venues.fetch_chain`, e.g. ``underlying=``, ``record=``,
        ``replay=``); or a file path, with ``format=`` one of :data:`FILE_FORMATS` (other
        options go to that importer).
    """
    from volcal.sources import files
    from volcal.sources.demo import demo_chain
    from volcal.sources.venues import SUPPORTED_VENUES, fetch_chain

    if isinstance(source, str) and source == "demo":
        return demo_chain(**options)
    if isinstance(source, str) and source.lower() in SUPPORTED_VENUES:
        if "underlying" not in options:
            raise ValueError(f"load_chain({source!r}) needs underlying=, e.g. 'BTC'")
        return fetch_chain(source, options.pop("underlying"), **options)
    path = Path(source)
    if not path.exists():
        raise ValueError(
            f"{source!r} is neither 'demo', a venue ({', '.join(SUPPORTED_VENUES)}) "
            "nor an existing file"
        )
    layout = options.pop("format", None)
    readers = {
        "deribit": files.read_deribit_snapshot,
        "deribit-2020": files.read_deribit_orderbook_2020,
        "cboe": files.read_cboe_quotes,
        "tardis": files.read_tardis_options_chain,
    }
    if layout not in readers:
        raise ValueError(f"load_chain({str(path)!r}) needs format= one of {FILE_FORMATS}")
    return readers[layout](path, **options)

"""Where chains come from: venue adapters on ccxt, record/replay, file importers, the demo market.

:func:`load_chain` is the one entry point: ``load_chain("demo")``, ``load_chain("deribit",
underlying="BTC")`` (live, or ``replay=cassette``), ``load_chain(path, format="cboe")``.
"""

from __future__ import annotations

from pathlib import Path

from volcal.chain import Chain

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

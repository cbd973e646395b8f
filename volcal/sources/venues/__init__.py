"""Option chains from crypto venues through ccxt: Deribit, OKX, Bybit, Binance.

:func:`fetch_chain` is the entry point; one module per venue holds the parse functions and
documents which Chain field comes from which endpoint and payload field:

- :mod:`volcal.sources.venues.deribit`: inverse options, one book-summary request;
- :mod:`volcal.sources.venues.okx`: inverse options, tickers + option summary (forward, IVs) +
  mark prices + open interest + index;
- :mod:`volcal.sources.venues.bybit`: USDC/USDT-settled options, one tickers request;
- :mod:`volcal.sources.venues.binance`: USDT-settled options, tickers + marks + index.

Every request goes through ccxt (unified methods where they carry the field, else the venue's
endpoint through ccxt's implicit API methods), so ccxt's HTTP, rate limiting and error mapping
apply everywhere, and :mod:`volcal.sources.replay` can record and replay all of it.
"""

from volcal.sources.venues._base import (
    PLACEHOLDER_CEILING,
    RetriesExhaustedError,
    Retry,
    UnknownUnderlyingError,
    UnknownVenueError,
    VenueAdapter,
    VenueError,
)
from volcal.sources.venues._fetch import (
    ADAPTERS,
    SUPPORTED_VENUES,
    adapter_for,
    build_exchange,
    fetch_chain,
)

__all__ = [
    "ADAPTERS",
    "PLACEHOLDER_CEILING",
    "SUPPORTED_VENUES",
    "RetriesExhaustedError",
    "Retry",
    "UnknownUnderlyingError",
    "UnknownVenueError",
    "VenueAdapter",
    "VenueError",
    "adapter_for",
    "build_exchange",
    "fetch_chain",
]

"""Where chains come from: venue adapters on ccxt, record/replay, CSV importers, the demo market."""

"""Margin: an options book repriced under scenario shocks on calibrated surfaces.

``load_book`` -> :class:`Book`; scenario sets (:func:`risk_matrix`, :func:`span`,
:func:`from_file`, :func:`historical`); ``margin(book, surfaces, scenarios)`` ->
:class:`MarginResult`. Sources of every default: ``../shared/MARGIN-METHODS.md`` and the
module docstrings.
"""

from volcal.margin.book import Book, BookError, load_book
from volcal.margin.engine import MarginResult, Market, margin
from volcal.margin.scenarios import ScenarioSet, VolRule, from_file, historical, risk_matrix, span

__all__ = [
    "Book",
    "BookError",
    "MarginResult",
    "Market",
    "ScenarioSet",
    "VolRule",
    "from_file",
    "historical",
    "load_book",
    "margin",
    "risk_matrix",
    "span",
]

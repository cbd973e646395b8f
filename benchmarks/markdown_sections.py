"""Rewrite one ``## `` section of a markdown page, keeping the others: each benchmark owns its
section of a shared page (benchmarks/README.md, docs/backfill.md)."""

from __future__ import annotations

from pathlib import Path


def replace_section(
    path: Path, heading: str, lines: list[str], title: str = "# Benchmarks"
) -> None:
    """Put ``lines`` (starting with ``heading``) in place of that section of ``path`` (up to
    the next ``## `` heading), or append them; a missing page starts with ``title``."""
    text = path.read_text() if path.exists() else title + "\n"
    body = "\n".join(lines).rstrip() + "\n\n"
    start = text.find(heading + "\n")
    if start < 0:
        path.write_text(text.rstrip() + "\n\n" + body)
        return
    end = text.find("\n## ", start + len(heading))
    path.write_text(text[:start] + body + ("" if end < 0 else text[end + 1 :]))

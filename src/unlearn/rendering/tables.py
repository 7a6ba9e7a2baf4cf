"""Markdown tables and the number formats of every table the toolkit writes.

One glyph for a value that is missing (:data:`MISSING`), one format per kind of number: fixed decimals for scores
in [0, 1] and times, and 3 significant digits in scientific notation for Forget Quality, a KS p-value that spans
many orders of magnitude (``1.23e-04``; the README's demo table was printed this way from the start).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MISSING = "—"
"""What a table shows where a value is missing (not measured, not applicable); a footnote says why where it can."""

CELL_LIMIT = 300


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals; :data:`MISSING` for a missing or non-finite one."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return MISSING
    return f"{value:.{digits}f}"


def fmt_fq(value: Any) -> str:
    """Forget Quality (a p-value): 3 significant digits, ``1.23e-04``."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return MISSING
    return f"{value:.2e}"


def fmt_small(value: Any, digits: int = 3) -> str:
    """Fixed decimals, switching to :func:`fmt_fq`'s form below 10^-digits so a small non-zero value is not 0.000."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value != 0 and abs(value) < 10 ** -digits:
        return fmt_fq(value)
    return fmt(value, digits) if isinstance(value, (int, float)) or value is None else str(value)


def fmt_ci(value: Any, ci: Sequence[Any] | None, digits: int = 3) -> str:
    """'0.512 [0.480, 0.550]': a mean with its 95 % bootstrap interval (when there is one)."""
    if ci is None or len(ci) != 2 or any(c is None for c in ci):
        return fmt(value, digits)
    return f"{fmt(value, digits)} [{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]"


def md_cell(text: Any, limit: int = CELL_LIMIT) -> str:
    """One markdown table cell: ``|`` escaped, newlines as <br>, long text cut at ``limit`` characters."""
    text = "" if text is None else str(text).strip()
    if len(text) > limit:
        text = text[:limit].rstrip() + " …"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; every row must have the header's width."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a table row has {len(row)} cells for {len(header)} columns: {list(row)}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


class Notes:
    """Numbered footnotes, one per distinct text: ``mark(text)`` → '[1]'."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def missing(self, text: str) -> str:
        """A cell for a missing value with the reason as a footnote: '— [1]'."""
        return f"{MISSING} {self.mark(text)}"

    def render(self) -> str:
        return "\n".join(f"[{i}] {t}  " for i, t in enumerate(self.texts, 1))

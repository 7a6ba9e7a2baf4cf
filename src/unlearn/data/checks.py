"""Data problems that make the numbers meaningless without failing anything: duplicate questions within a split,
and forget rows that also appear in the retain split (Forget Quality then compares a model with itself).

Each is a warning naming the rows, or an error with ``data.strict=true`` (``--strict``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from unlearn.data.records import QARecord
from unlearn.errors import DataError

log = logging.getLogger("unlearn")
SHOWN = 3


def duplicate_questions(records: Sequence[QARecord]) -> list[list[str]]:
    """Groups of rows (their sources) that ask the same question, in file order."""
    rows: dict[str, list[str]] = defaultdict(list)
    for r in records:
        rows[r.question.strip()].append(r.source)
    return [sources for sources in rows.values() if len(sources) > 1]


def overlap(forget: Sequence[QARecord], retain: Sequence[QARecord]) -> list[tuple[str, str]]:
    """(forget row, retain row) pairs with the same question and answer."""
    retain_rows = {(r.question.strip(), r.answer.strip()): r.source for r in retain}
    return [(f.source, retain_rows[key]) for f in forget
            if (key := (f.question.strip(), f.answer.strip())) in retain_rows]


def _report(problem: str, examples: list[str], strict: bool) -> None:
    text = f"{problem}: {'; '.join(examples[:SHOWN])}{' …' if len(examples) > SHOWN else ''}"
    if strict:
        raise DataError(f"{text} (data.strict=true makes this an error)")
    log.warning("warning: %s (--strict makes this an error)", text)


def check_split(records: Sequence[QARecord], what: str, strict: bool) -> None:
    groups = duplicate_questions(records)
    if groups:
        _report(f"{len(groups)} question(s) of {what} appear more than once", [" = ".join(g) for g in groups], strict)


def check_unlearning_data(forget: Sequence[QARecord], retain: Sequence[QARecord], strict: bool) -> None:
    """Duplicates within the forget and retain splits, and forget rows inside the retain split."""
    check_split(forget, "the forget split", strict)
    check_split(retain, "the retain split", strict)
    pairs = overlap(forget, retain)
    if pairs:
        _report(f"{len(pairs)} forget row(s) also appear in the retain split, so Forget Quality compares a model "
                "with itself", [f"{a} = {b}" for a, b in pairs], strict)

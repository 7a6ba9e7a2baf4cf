"""The QA record every benchmark is converted to, and the validation that names file, row and field.

TOFU's fields (docs/formulas.md#tofu-metrics): ``question``, ``answer``, ``paraphrased_answer``,
``perturbed_answer`` (list).
Multiple-choice files (``real_authors.json``) carry ``option1..4``; anything else is kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from unlearn.errors import DataError


@dataclass(frozen=True)
class QARecord:
    """One question/answer pair with the optional evaluation variants.

    ``source`` says where the record came from (``file:row``) so later errors can point back at it.
    """

    question: str
    answer: str
    paraphrased_answer: str | None = None
    perturbed_answers: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    source: str = field(default="", compare=False)

    def with_answer(self, answer: str) -> QARecord:
        """The same question with another answer (used for IDK targets)."""
        return QARecord(question=self.question, answer=answer, source=self.source)


_KNOWN = {"question", "answer", "paraphrased_answer", "perturbed_answer", "option1", "option2", "option3",
          "option4"}


def row_location(path: object, row: int, line: int | None) -> str:
    """Where a record sits, the one way every reader says it: its row (0-based, the ``file:row`` of sources) and,
    where the layout has lines (JSON lines, CSV), its line."""
    return f"{path}: row {row}" + (f" (line {line})" if line is not None else "")


def _require_text(raw: dict[str, Any], key: str, where: str) -> str:
    if key not in raw:
        raise DataError(f"{where}: field '{key}' is missing (fields present: {sorted(raw)})")
    value = raw[key]
    if not isinstance(value, str):
        raise DataError(f"{where}: field '{key}' must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: field '{key}' is empty")
    return value


def record_from_dict(
    raw: Any,
    path: str,
    row: int,
    line: int | None = None,
    require: Sequence[str] = ("question", "answer"),
) -> QARecord:
    """Validate one raw JSON object and build a :class:`QARecord`.

    ``require`` names extra fields this split must have (e.g. ``perturbed_answer`` for eval splits).
    """
    where = row_location(path, row, line)
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    question = _require_text(raw, "question", where)
    answer = _require_text(raw, "answer", where)
    paraphrase = None
    if "paraphrased_answer" in raw or "paraphrased_answer" in require:
        paraphrase = _require_text(raw, "paraphrased_answer", where)
    perturbed: tuple[str, ...] = ()
    if "perturbed_answer" in raw or "perturbed_answer" in require:
        if "perturbed_answer" not in raw:
            raise DataError(f"{where}: field 'perturbed_answer' is missing (fields present: {sorted(raw)})")
        value = raw["perturbed_answer"]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise DataError(f"{where}: field 'perturbed_answer' must be a non-empty list of strings")
        for j, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise DataError(f"{where}: field 'perturbed_answer[{j}]' must be a non-empty string")
        perturbed = tuple(value)
    options = tuple(str(raw[k]) for k in ("option1", "option2", "option3", "option4") if k in raw)
    extra = {k: v for k, v in raw.items() if k not in _KNOWN}
    return QARecord(
        question=question,
        answer=answer,
        paraphrased_answer=paraphrase,
        perturbed_answers=perturbed,
        options=options,
        extra=extra,
        source=f"{path}:{row}",
    )


def record_to_dict(record: QARecord) -> dict[str, Any]:
    """Inverse of :func:`record_from_dict` in the TOFU field names."""
    out: dict[str, Any] = {"question": record.question, "answer": record.answer}
    if record.paraphrased_answer is not None:
        out["paraphrased_answer"] = record.paraphrased_answer
    if record.perturbed_answers:
        out["perturbed_answer"] = list(record.perturbed_answers)
    for k, opt in enumerate(record.options, start=1):
        out[f"option{k}"] = opt
    out.update(record.extra)
    return out

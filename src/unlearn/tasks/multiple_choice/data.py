"""Four-option multiple-choice questions: WMDP (``{bio,chem,cyber}_questions.json``, or ``cais/wmdp``) and MMLU
(``{dev,test}/<subject>_{dev,test}.csv``, or ``cais/mmlu``).

Every question is checked when read — exactly four choices, an answer index 0–3 (or a letter A–D) — and a bad one is a
DataError naming the file and row.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from unlearn.data.files import read_utf8
from unlearn.data.records import row_location
from unlearn.errors import ConfigError, DataError

LETTERS = ("A", "B", "C", "D")

# The four MMLU categories (Hendrycks et al., 2021; lm-evaluation-harness's mmlu groups).
MMLU_CATEGORIES: dict[str, tuple[str, ...]] = {
    "stem": ("abstract_algebra", "anatomy", "astronomy", "college_biology", "college_chemistry",
             "college_computer_science", "college_mathematics", "college_physics", "computer_security",
             "conceptual_physics", "electrical_engineering", "elementary_mathematics", "high_school_biology",
             "high_school_chemistry", "high_school_computer_science", "high_school_mathematics",
             "high_school_physics", "high_school_statistics", "machine_learning"),
    "humanities": ("formal_logic", "high_school_european_history", "high_school_us_history",
                   "high_school_world_history", "international_law", "jurisprudence", "logical_fallacies",
                   "moral_disputes", "moral_scenarios", "philosophy", "prehistory", "professional_law",
                   "world_religions"),
    "social_sciences": ("econometrics", "high_school_geography", "high_school_government_and_politics",
                        "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology",
                        "human_sexuality", "professional_psychology", "public_relations", "security_studies",
                        "sociology", "us_foreign_policy"),
    "other": ("business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging",
              "management", "marketing", "medical_genetics", "miscellaneous", "nutrition", "professional_accounting",
              "professional_medicine", "virology"),
}
MMLU_SUBJECTS: tuple[str, ...] = tuple(sorted(s for group in MMLU_CATEGORIES.values() for s in group))
CATEGORY_OF = {s: c for c, group in MMLU_CATEGORIES.items() for s in group}


@dataclass(frozen=True)
class MCQuestion:
    question: str
    choices: tuple[str, str, str, str]
    answer: int
    source: str
    subject: str = ""


def mc_question(row: object, where: str, subject: str = "", source: str | None = None) -> MCQuestion:
    """One question from a ``{question, choices, answer}`` row; bad rows are a DataError naming ``where``;
    ``source`` (default ``where``) identifies it in the evaluation rows."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object with question, choices and answer, got {type(row).__name__}")
    question, choices, answer = row.get("question"), row.get("choices"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: field 'question' must be a non-empty string")
    if not isinstance(choices, (list, tuple)) or len(choices) != 4:
        n = len(choices) if isinstance(choices, (list, tuple)) else type(choices).__name__
        raise DataError(f"{where}: field 'choices' must hold exactly four options, got {n}")
    if isinstance(answer, str) and answer.strip().upper() in LETTERS:
        answer = LETTERS.index(answer.strip().upper())
    elif isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer.strip())
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < 4:
        raise DataError(f"{where}: field 'answer' must be an index 0-3 or a letter A-D, got {answer!r}")
    return MCQuestion(question, tuple(str(c) for c in choices), answer, source or where,  # type: ignore[arg-type]
                      subject)


def read_wmdp(path: str | Path) -> list[MCQuestion]:
    """A WMDP question file: a JSON list (or JSON lines) of ``{question, choices, answer}``."""
    path = Path(path)
    text = read_utf8(path)
    rows: list[tuple[object, int | None]] = []
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((json.loads(line), line_no))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: neither a JSON list nor JSON lines (line {line_no}: {err.msg})") from None
    else:
        if not isinstance(whole, list):
            raise DataError(f"{path}: expected a list of questions, got a JSON {type(whole).__name__}")
        rows = [(row, None) for row in whole]
    if not rows:
        raise DataError(f"{path}: expected a non-empty list of questions")
    return [mc_question(row, row_location(path, i, line), source=f"{path}:{i}") for i, (row, line) in enumerate(rows)]


def read_mmlu_csv(path: str | Path, subject: str) -> list[MCQuestion]:
    """One MMLU subject file: a header ``question,choice0..3,answer`` (our copy), or the original header-less
    ``question,A,B,C,D,letter`` rows."""
    path = Path(path)
    reader = csv.reader(io.StringIO(read_utf8(path)))
    out: list[MCQuestion] = []
    for row in reader:
        line = reader.line_num
        if not row or (line == 1 and [c.strip().lower() for c in row][:1] == ["question"]):
            continue
        where = row_location(path, len(out), line)
        if len(row) != 6:
            raise DataError(f"{where} has {len(row)} columns, expected 6 (question, four choices, answer)")
        out.append(mc_question({"question": row[0], "choices": row[1:5], "answer": row[5]}, where, subject,
                               source=f"{path}:{len(out)}"))
    if not out:
        raise DataError(f"{path}: no questions")
    return out


def check_subjects(subjects: list[str] | None) -> tuple[str, ...]:
    """The chosen MMLU subjects (all 57 when None); an unknown one is a ConfigError listing close names."""
    if subjects is None:
        return MMLU_SUBJECTS
    unknown = [s for s in subjects if s not in CATEGORY_OF]
    if unknown:
        import difflib

        hints = {s: difflib.get_close_matches(s, MMLU_SUBJECTS, 1) for s in unknown}
        shown = ", ".join(f"{s!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for s, h in hints.items())
        raise ConfigError(f"unknown MMLU subject(s): {shown}; there are 57, e.g. {', '.join(MMLU_SUBJECTS[:3])}")
    return tuple(subjects)


def present_subjects(root: str | Path) -> tuple[str, ...]:
    """The MMLU subjects with a ``test/<subject>_test.csv`` in ``root`` (all 57 in a full copy)."""
    test = Path(root) / "test"
    return tuple(s for s in MMLU_SUBJECTS if (test / f"{s}_test.csv").is_file())


def read_mmlu(root: str | Path, split: str, subjects: tuple[str, ...]) -> list[MCQuestion]:
    """The questions of ``subjects`` in ``root/split/<subject>_<split>.csv``."""
    out = []
    for subject in subjects:
        path = Path(root) / split / f"{subject}_{split}.csv"
        if not path.is_file():
            raise DataError(f"MMLU subject {subject!r}: {path} not found")
        out += read_mmlu_csv(path, subject)
    return out

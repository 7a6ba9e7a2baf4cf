"""Real-world individuals (closer-look §5.3; docs/formulas.md#real-world): the layout of closer-look's
``data/real_world`` and the checks every file gets before a model loads.

- ``forget.json``: the people to forget, 20 questions each (``task_id`` = person); ``answer`` is the target model's
  own answer (what is unlearned), ``golden_answer`` the ground truth (what is measured);
- ``neighbor.json``: other people, the regularization (retain) set;
- ``forget_perturbed.json`` / ``neighbor_perturbed.json``: the evaluation files, the latter on a third set of people
  (closer-look measures utility on people neither forgotten nor regularized on), with ``paraphrased_answer`` and
  ``perturbed_answer`` written from the golden answer.

Evaluation records carry the golden answer as their ``answer`` and the file's ``answer`` (the model's own, before
unlearning) as ``own_answer``, the reference of Cosine Similarity in this scenario.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearn.data.files import read_raw_rows
from unlearn.data.records import QARecord, record_from_dict
from unlearn.errors import DataError
from unlearn.tasks.tofu.data import EVAL_FIELDS, TofuData

FORGET, NEIGHBOR = "forget", "neighbor"
TRAIN_FILES = (FORGET, NEIGHBOR)
EVAL_FILES = {"forget": "forget_perturbed", "neighbor": "neighbor_perturbed"}
"""Evaluation set → its file (without suffix)."""
GOLDEN = "golden_answer"
OWN = "own_answer"


def split_file(root: str | Path, name: str) -> Path:
    """``<root>/<name>.json`` (or ``.jsonl``); a missing file is a DataError naming what the layout needs."""
    path = TofuData(root).local_file(name)
    if path is not None:
        return path
    raise DataError(f"{root}: {name}.json not found; real-world unlearning reads forget.json, neighbor.json, "
                    "forget_perturbed.json and neighbor_perturbed.json (closer-look's data/real_world layout)")


def _golden(raw: dict[str, Any], where: str) -> str:
    value = raw.get(GOLDEN)
    if GOLDEN not in raw:
        raise DataError(f"{where}: field '{GOLDEN}' is missing; real-world metrics are computed against the ground "
                        "truth, and 'answer' holds the model's own answer (fields present: "
                        f"{sorted(raw)})")
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field '{GOLDEN}' must be a non-empty string, got {value!r}")
    return value


def read_eval_records(root: str | Path, set_name: str, limit: int | None = None) -> list[QARecord]:
    """The evaluation records of ``set_name`` (``forget`` or ``neighbor``): the golden answer as ``answer``, the
    file's ``answer`` under ``extra['own_answer']``. Every row is checked, also beyond ``limit``."""
    path = split_file(root, EVAL_FILES[set_name])
    out = []
    for i, (raw, line) in enumerate(read_raw_rows(path)):
        record = record_from_dict(raw, str(path), i, line, EVAL_FIELDS)
        where = f"{path}: row {i}" + (f" (line {line})" if line is not None else "")
        golden = _golden(raw, where)
        out.append(QARecord(question=record.question, answer=golden, paraphrased_answer=record.paraphrased_answer,
                            perturbed_answers=record.perturbed_answers,
                            extra={**record.extra, OWN: record.answer}, source=record.source))
    return out[:limit] if limit is not None else out


def check_layout(root: str | Path) -> None:
    """Every file of the layout present and valid: question and answer everywhere, golden answers, paraphrases and
    perturbed answers in the evaluation files (the issue's "real-world data without golden_answer")."""
    if not Path(root).is_dir():
        raise DataError(f"data.root {str(root)!r} is not a directory (closer-look's data/real_world, or the "
                        "real_world/ folder of generated data)")
    for name in TRAIN_FILES:
        path = split_file(root, name)
        for i, (raw, line) in enumerate(read_raw_rows(path)):
            record_from_dict(raw, str(path), i, line)
    for set_name in EVAL_FILES:
        read_eval_records(root, set_name)

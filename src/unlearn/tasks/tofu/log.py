"""The TOFU authors' ``eval_log_aggregated.json`` format, read and written.

Top-level keys name the four sets; inside, per-metric dicts keyed by row index as a string ("0", "1", …):
``avg_gt_loss``, ``avg_paraphrased_loss``, ``average_perturb_loss`` (list), ``rougeL_recall``, ``generated_text``
([prompt, generation, answer]), and the summed losses / token counts. Only the average losses and ROUGE enter
the aggregates; the stored ``truth_ratio`` field is not used (its definition differs between releases).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unlearn.errors import DataError
from unlearn.io import read_json
from unlearn.runs import RunDirectory
from unlearn.tasks.tofu.metrics import SetSamples, as_ragged
from unlearn.tasks.tofu.sets import TOFU_SETS

TOFU_LOG_KEYS = {
    "forget": "eval_log_forget.json",
    "retain": "eval_log.json",
    "real_authors": "eval_real_author_wo_options.json",
    "world_facts": "eval_real_world_wo_options.json",
}
REQUIRED = ("avg_gt_loss", "avg_paraphrased_loss", "average_perturb_loss")


def _ordered(values: Mapping[str, Any], where: str) -> list[Any]:
    try:
        keys = sorted(values, key=int)
    except ValueError:
        raise DataError(f"{where}: row keys must be integers as strings (\"0\", \"1\", …)") from None
    return [values[k] for k in keys]


def _numbers(values: list[Any], where: str) -> list[float]:
    """The values as floats; the first non-number is a DataError naming its row."""
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise DataError(f"{where}: row {i} is {v!r}, not a number")
    return [float(v) for v in values]


def set_samples_from_log(log: Mapping[str, Any], path: str = "eval log") -> dict[str, SetSamples]:
    """Convert a TOFU eval log (already parsed) into :class:`SetSamples` per set present in it."""
    if not isinstance(log, Mapping):
        raise DataError(f"{path}: expected a JSON object with keys like {list(TOFU_LOG_KEYS.values())}")
    found = {name: key for name, key in TOFU_LOG_KEYS.items() if key in log}
    if not found:
        raise DataError(f"{path}: none of the TOFU eval-log keys {list(TOFU_LOG_KEYS.values())} are present "
                        f"(found: {sorted(log)[:8]})")
    out = {}
    for name, key in found.items():
        block = log[key]
        where = f"{path}: {key}"
        for field in REQUIRED:
            if field not in block:
                raise DataError(f"{where}: field '{field}' is missing")
        gt = _numbers(_ordered(block["avg_gt_loss"], f"{where}.avg_gt_loss"), f"{where}.avg_gt_loss")
        para = _numbers(_ordered(block["avg_paraphrased_loss"], f"{where}.avg_paraphrased_loss"),
                        f"{where}.avg_paraphrased_loss")
        pert = _ordered(block["average_perturb_loss"], f"{where}.average_perturb_loss")
        if not (len(gt) == len(para) == len(pert)):
            raise DataError(f"{where}: avg_gt_loss, avg_paraphrased_loss and average_perturb_loss have "
                            f"different row counts ({len(gt)}, {len(para)}, {len(pert)})")
        pert = [_numbers(p if isinstance(p, list) else [p], f"{where}.average_perturb_loss[{i}]")
                for i, p in enumerate(pert)]
        rouge = _numbers(_ordered(block["rougeL_recall"], f"{where}.rougeL_recall"), f"{where}.rougeL_recall") \
            if "rougeL_recall" in block else None
        out[name] = SetSamples(set_type=TOFU_SETS[name], gt_loss=np.array(gt, dtype=np.float64),
                               paraphrased_loss=np.array(para, dtype=np.float64), perturbed_loss=as_ragged(pert),
                               rouge=None if rouge is None else np.array(rouge, dtype=np.float64))
    return out


def _read_log(path: str | Path) -> tuple[Any, Path]:
    path = Path(path)
    if path.is_dir():
        path = RunDirectory(path).tofu_log_file
    if not path.is_file():
        raise DataError(f"{path}: eval log not found")
    try:
        return read_json(path), path
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def load_eval_log(path: str | Path) -> dict[str, SetSamples]:
    """Read ``eval_log_aggregated.json`` (or a run directory containing one)."""
    log, path = _read_log(path)
    return set_samples_from_log(log, str(path))


def load_eval_log_texts(path: str | Path) -> dict[str, list[tuple[str, str, str]]]:
    """Per set present with ``generated_text``: (prompt, generation, ground-truth answer) per row, in row order."""
    log, path = _read_log(path)
    out = {}
    for name, key in TOFU_LOG_KEYS.items():
        block = log.get(key) if isinstance(log, dict) else None
        if not isinstance(block, dict) or not isinstance(block.get("generated_text"), dict):
            continue
        rows = _ordered(block["generated_text"], f"{path}: {key}.generated_text")
        if all(isinstance(r, list) and len(r) == 3 and all(isinstance(x, str) for x in r) for r in rows):
            out[name] = [tuple(r) for r in rows]
    return out


def log_from_samples(samples: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """Our per-sample rows (see :mod:`unlearn.tasks.tofu.evaluate`) in the TOFU log layout."""
    log: dict[str, Any] = {}
    for name, rows in samples.items():
        if name not in TOFU_LOG_KEYS:
            continue
        block: dict[str, dict[str, Any]] = {
            k: {} for k in ("avg_gt_loss", "gt_loss", "num_token_gt", "generated_text", "rougeL_recall",
                            "avg_paraphrased_loss", "paraphrased_loss", "num_token_paraphrased",
                            "average_perturb_loss", "perturb_loss", "num_token_perturb", "truth_ratio")
        }
        for i, r in enumerate(rows):
            k = str(i)
            block["avg_gt_loss"][k] = r["gt_loss"]
            block["gt_loss"][k] = r["gt_loss"] * r["gt_tokens"]
            block["num_token_gt"][k] = r["gt_tokens"]
            block["generated_text"][k] = [r["prompt"], r.get("generation", ""), r["answer"]]
            block["rougeL_recall"][k] = r.get("rougeL_recall")
            block["avg_paraphrased_loss"][k] = r["paraphrased_loss"]
            block["paraphrased_loss"][k] = r["paraphrased_loss"] * r["paraphrased_tokens"]
            block["num_token_paraphrased"][k] = r["paraphrased_tokens"]
            block["average_perturb_loss"][k] = r["perturbed_loss"]
            block["perturb_loss"][k] = [a * n for a, n in zip(r["perturbed_loss"], r["perturbed_tokens"], strict=True)]
            block["num_token_perturb"][k] = r["perturbed_tokens"]
            block["truth_ratio"][k] = r["truth_ratio"]
        if all(v is None for v in block["rougeL_recall"].values()):
            del block["rougeL_recall"], block["generated_text"]
        log[TOFU_LOG_KEYS[name]] = block
    return log

"""What differs between the runs of a comparison or a sweep in what produced them (their ``provenance``): the data
files' contents, the task's protocol version, the starting model, the toolkit's version. ``unlearn compare`` and the
sweep report print it as a bold warning; ``unlearn compare --strict`` refuses.

Which runs must agree on what:

- a data file (by its name relative to ``data.root``): every run that read it — the same name with other contents
  means another copy of the benchmark;
- a task's version: every run scored by that task;
- the starting model (its weights' digest): the runs of one stage — every unlearning run should start from the
  same target, every fine-tuning run from the same base (a target and its unlearned runs differ by design);
- the toolkit's version: every run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from unlearn.errors import UnlearnError
from unlearn.runs import LIMITED, RunResults


@dataclass(frozen=True)
class Difference:
    """One thing the runs disagree on: ``what`` (e.g. ``data file forget10.json``) and each value with the runs
    that have it."""

    what: str
    values: dict[str, list[str]]

    def describe(self) -> str:
        return "; ".join(f"{value} ({', '.join(names)})" for value, names in self.values.items())


def _short(digest: Any) -> str:
    return f"sha256 {digest[:12]}…" if isinstance(digest, str) else "unknown"


def _disagreement(what: str, named: Sequence[tuple[str, Any]], show: Callable[[Any], str] = str) -> Difference | None:
    values: dict[str, list[str]] = {}
    for name, value in named:
        values.setdefault(show(value), []).append(name)
    return Difference(what, values) if len(values) > 1 else None


def provenance_differences(results: Sequence[RunResults], names: Sequence[str]) -> tuple[list[Difference], list[str]]:
    """(the differences, the names of runs that record no provenance and so cannot be checked)."""
    recorded = [(n, r) for n, r in zip(names, results, strict=True) if r.provenance is not None]
    unchecked = [n for n, r in zip(names, results, strict=True) if r.provenance is None]
    found: list[Difference | None] = []
    files: dict[str, list[tuple[str, Any]]] = {}
    for name, r in recorded:
        for entry in r.provenance.get("data") or []:
            if entry.get("file"):
                files.setdefault(entry["file"], []).append((name, entry.get("sha256")))
    found += [_disagreement(f"data file {file}", named, _short) for file, named in sorted(files.items())]
    tasks: dict[str, list[tuple[str, Any]]] = {}
    for name, r in recorded:
        task = r.provenance.get("task") or {}
        tasks.setdefault(task.get("name", r.task), []).append((name, task.get("version")))
    found += [_disagreement(f"{task} task version", named, lambda v: f"version {v}")
              for task, named in sorted(tasks.items())]
    stages: dict[str, list[tuple[str, Any]]] = {}
    for name, r in recorded:
        if r.stage in ("unlearn", "finetune") and (r.provenance.get("model") or {}).get("weights_sha256"):
            stages.setdefault(r.stage, []).append((name, r.provenance["model"]["weights_sha256"]))
    labels = {"unlearn": "starting model of the unlearning runs", "finetune": "base model of the fine-tuning runs"}
    found += [_disagreement(labels[stage], named, _short) for stage, named in sorted(stages.items())]
    found.append(_disagreement("toolkit version", [(n, (r.provenance.get("toolkit") or {}).get("version"))
                                                   for n, r in recorded]))
    return [d for d in found if d is not None], unchecked


def warning_lines(differences: Sequence[Difference], unchecked: Sequence[str]) -> list[str]:
    """Markdown: a bold warning naming each difference, and the runs that could not be checked."""
    lines: list[str] = []
    if differences:
        lines += ["**Warning: these runs differ in what produced them; their numbers may not be comparable.**", ""]
        lines += [f"- **{d.what}**: {d.describe()}" for d in differences]
        lines.append("")
    if unchecked:
        lines += [f"_Not checked: {', '.join(unchecked)} record no provenance (written by an earlier unlearn)._", ""]
    return lines


def limited_lines(results: Sequence[RunResults], names: Sequence[str]) -> list[str]:
    """A bold line naming the ``--limit`` runs among ``results`` (their numbers are smoke tests, not results)."""
    limited = [n for n, r in zip(names, results, strict=True) if r.limited is not None]
    if not limited:
        return []
    return [f"**{LIMITED}: {', '.join(limited)} ran with --limit (the first rows of every set only).**", ""]


def refuse_differences(differences: Sequence[Difference], flag: str = "--strict") -> None:
    """One line naming every difference, for ``--strict``."""
    if differences:
        shown = "; ".join(f"{d.what}: {d.describe()}" for d in differences)
        raise UnlearnError(f"{flag}: the runs differ in what produced them — {shown}")

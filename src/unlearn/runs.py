"""The run directory: every file of a run is named, read and written here, and nowhere else.

| file | what |
|---|---|
| ``config.yaml`` | the resolved configuration (recipe values filled in, the recipe named in a comment) |
| ``train_log.jsonl`` | per optimizer step: loss, forget/retain loss, lr, gradient norm |
| ``epochs.jsonl`` | per-epoch evaluation (epoch 0 = the starting model) |
| ``eval/<set>.jsonl`` | per-sample evaluation rows, one file per eval set |
| ``eval_log_aggregated.json`` | TOFU's eval-log format (scoreable by ``unlearn score``) |
| ``metrics.json`` | :class:`RunResults`, written last: its presence means the run is complete |
| ``report.md``, ``plots/`` | the human-readable report |
| ``model/`` | weights (safetensors) + tokenizer, when asked |
| ``checkpoint/`` | the resume checkpoint (dropped when the run is complete) |

Every write is atomic (:mod:`unlearn.io`), so a killed run never leaves a half-written file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from unlearn.errors import UnlearnError
from unlearn.io import append_jsonl, read_json, read_jsonl, remove_path, write_json, write_jsonl, write_text

SCHEMA_VERSION = 1
"""Version of ``metrics.json``. 0 = files written before versioning (``run.kind`` instead of ``run.stage``)."""

STAGES = ("finetune", "unlearn", "eval")


def unwritable_ancestor(folder: Path) -> Path | None:
    """The existing directory that would refuse ``folder`` (itself, or the nearest ancestor that exists when it
    does not yet), or None when ``folder`` can be written or created."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return None if probe.is_dir() and os.access(probe, os.W_OK | os.X_OK) else probe


def _inside(path: Path, container: Path) -> bool:
    """``path`` is ``container`` or lies below it, compared both as written and with symlinks resolved."""
    pairs = ((path.absolute(), container.absolute()), (path.resolve(), container.resolve()))
    return any(p == c or c in p.parents for p, c in pairs)


@dataclass(frozen=True)
class CommandInput:
    """A path a command reads (its model, data, a reference run): nothing of it may be removed or written over.

    ``kind`` says how much of it is read: ``tree``, everything below it (a model directory, a file); ``run``, a run
    directory's results (its ``attacks/`` folder may hold other runs' output, e.g. a relearning attack's runs);
    ``root``, only the path itself and what holds it (a data root: a run may live in a folder below it)."""

    key: str
    path: Path
    kind: str = "tree"

    def holds(self, path: Path) -> bool:
        """``path`` is this input or lies inside the part of it that is read."""
        if self.kind == "root":
            return False
        return _inside(path, self.path) and not (self.kind == "run" and _inside(path, self.path / "attacks"))

    def touched_by(self, target: Path) -> bool:
        """Would removing or replacing ``target`` change this input?"""
        return _inside(self.path, target) or self.holds(target)

    def describe(self) -> str:
        return f"{self.path} ({self.key})"


@dataclass
class RunInfo:
    """What produced the results: the stage and, for training stages, what was trained on."""

    stage: str
    method: dict[str, Any] | None = None
    forget_split: str | None = None
    n_forget: int | None = None
    train_splits: list[str] | None = None
    n_train: int | None = None
    model: str | None = None
    optimizer_steps: int | None = None
    train_seconds: float | None = None
    resumed_from_step: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, raw: Any, where: str) -> RunInfo:
        if not isinstance(raw, dict):
            raise UnlearnError(f"{where}: 'run' must be a JSON object")
        raw = dict(raw)
        if "stage" not in raw and "kind" in raw:  # schema 0
            raw["stage"] = raw.pop("kind")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known and k != "stage"}, stage=str(raw.get("stage",
                                                                                                    "unknown")))

    @property
    def objective(self) -> str | None:
        """The forget objective of a loss method (``npo``), the method of a weight edit, else None."""
        method = self.method or {}
        return (method.get("forget") or {}).get("objective") or (method.get("edit") or {}).get("method")


LIMITED = "limited — not comparable"
"""What every result of a ``--limit`` run says of itself (``metrics.json``, the report, every table)."""


@dataclass
class RunResults:
    """``metrics.json``: the task's aggregates plus what produced them.

    ``metrics`` holds the task's own aggregates (for TOFU: ``sets``, ``model_utility_9``, ``forget_quality``,
    ``closer_look``, ``forget_quality_reference``; see :class:`unlearn.tasks.tofu.task.TofuMetrics`); in the file
    they sit at the top level, next to ``schema_version``, ``task``, ``run`` and ``seconds``.
    """

    task: str
    metrics: dict[str, Any]
    run: RunInfo | None = None
    seconds: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    provenance: dict[str, Any] | None = None
    """What produced the numbers (:mod:`unlearn.provenance`); None in files written before it was recorded."""

    NOTE_KEYS = ("rescored_from_generations", "limited")
    RESERVED = ("schema_version", "task", "run", "seconds", "provenance")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": self.schema_version, "task": self.task, **self.metrics}
        if self.run is not None:
            out["run"] = self.run.to_json()
        if self.seconds is not None:
            out["seconds"] = self.seconds
        if self.provenance is not None:
            out["provenance"] = self.provenance
        return {**out, **self.notes}

    @classmethod
    def from_json(cls, raw: Any, where: str = "metrics.json") -> RunResults:
        if not isinstance(raw, dict):
            raise UnlearnError(f"{where}: expected a JSON object")
        version = raw.get("schema_version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise UnlearnError(f"{where}: schema_version {version!r} is newer than this unlearn understands "
                               f"({SCHEMA_VERSION}); upgrade unlearn")
        run = RunInfo.from_json(raw["run"], where) if raw.get("run") is not None else None
        notes = {k: raw[k] for k in cls.NOTE_KEYS if k in raw}
        metrics = {k: v for k, v in raw.items() if k not in cls.RESERVED and k not in notes}
        seconds = raw.get("seconds")
        provenance = raw.get("provenance")
        return cls(task=str(raw.get("task", "tofu")), metrics=metrics, run=run,
                   seconds=float(seconds) if isinstance(seconds, (int, float)) else None, notes=notes,
                   schema_version=version, provenance=provenance if isinstance(provenance, dict) else None)

    @property
    def stage(self) -> str:
        return self.run.stage if self.run is not None else "unknown"

    @property
    def limited(self) -> int | None:
        """The ``--limit`` of a smoke-test run (its numbers are not comparable), else None."""
        note = self.notes.get("limited")
        return note.get("limit") if isinstance(note, dict) else None


class RunDirectory:
    """One run's directory. Names every file; reads and writes them; answers "is it complete?"; clears it."""

    CONFIG = "config.yaml"
    TRAIN_LOG = "train_log.jsonl"
    EPOCHS = "epochs.jsonl"
    EVAL = "eval"
    TOFU_LOG = "eval_log_aggregated.json"
    METRICS = "metrics.json"
    REPORT = "report.md"
    PLOTS = "plots"
    MODEL = "model"
    ADAPTER = "adapter"  # inside model/: a LoRA run's adapter (the model itself holds the merged weights)
    CHECKPOINT = "checkpoint"
    ATTACKS = "attacks"  # `unlearn attack` results on this run's model
    TRACKING = "tracking"  # the experiment tracker's files (report_to=tensorboard)
    GENERATED = "generated_answers.json"  # answers the starting model wrote before training (AltPO's alternatives)
    OWNED = (CONFIG, TRAIN_LOG, EPOCHS, EVAL, TOFU_LOG, METRICS, REPORT, PLOTS, MODEL, CHECKPOINT, ATTACKS, TRACKING,
             GENERATED, "ranks")
    MARKERS = (CONFIG, METRICS, CHECKPOINT, TRAIN_LOG)
    """Files only a run of this toolkit writes (``config.yaml`` first of all): without one of them, nothing here is
    a run's, whatever its name."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # -- names -------------------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def train_log_file(self) -> Path:
        return self.path / self.TRAIN_LOG

    @property
    def epochs_file(self) -> Path:
        return self.path / self.EPOCHS

    @property
    def eval_dir(self) -> Path:
        return self.path / self.EVAL

    def eval_rows_file(self, set_name: str) -> Path:
        return self.eval_dir / f"{set_name}.jsonl"

    @property
    def tofu_log_file(self) -> Path:
        return self.path / self.TOFU_LOG

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def report_file(self) -> Path:
        return self.path / self.REPORT

    @property
    def generated_file(self) -> Path:
        return self.path / self.GENERATED

    @property
    def plots_dir(self) -> Path:
        return self.path / self.PLOTS

    @property
    def model_dir(self) -> Path:
        return self.path / self.MODEL

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def attacks_dir(self) -> Path:
        return self.path / self.ATTACKS

    # -- state -------------------------------------------------------------------------------------------
    def create(self) -> RunDirectory:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def is_complete(self) -> bool:
        """True when ``metrics.json`` exists: it is written last, after every other result file."""
        return self.metrics_file.is_file()

    def holds_run(self, inputs: Sequence[CommandInput] = ()) -> bool:
        """True when a run's files are here (a finished run, an unfinished one, or its leftovers), not counting the
        command's own ``inputs`` (e.g. ``model/`` evaluated in place)."""
        return bool(self.removable(inputs))

    def entries(self) -> list[Path]:
        """The run's own entries present here (with the leftover temporary copies of killed writes)."""
        found = [self.path / name for name in self.OWNED if os.path.lexists(self.path / name)]
        return found + self.leftovers()

    def leftovers(self) -> list[Path]:
        """Temporary copies left by a process killed while writing (``.NAME.*.tmp``, and ``.NAME.old`` beside a
        finished ``NAME``), in the run directory and its result folders: they can be as big as the model."""
        found: list[Path] = []
        for folder in (self.path, self.eval_dir, self.plots_dir, self.attacks_dir):
            if folder.is_dir():
                found += [p for p in folder.iterdir() if p.name.startswith(".") and (
                    p.name.endswith(".tmp") or (p.name.endswith(".old") and (folder / p.name[1:-4]).exists()))]
        return sorted(found)

    def has_marker(self) -> bool:
        return any(os.path.lexists(self.path / name) for name in self.MARKERS)

    def removable(self, inputs: Sequence[CommandInput] = ()) -> list[Path]:
        """What :meth:`clear` removes: the run's entries that no input of the command is in."""
        return [p for p in self.entries() if not any(i.touched_by(p) for i in inputs)]

    def kept_inputs(self, inputs: Sequence[CommandInput] = ()) -> list[tuple[Path, CommandInput]]:
        """The run's entries that :meth:`clear` keeps because an input of the command is in them."""
        return [(p, i) for p in self.entries() for i in inputs if i.touched_by(p)]

    def check_writable(self) -> None:
        """One clear line, before any compute, when the directory cannot be written (nothing is created)."""
        if self.path.exists() and not self.path.is_dir():
            raise UnlearnError(f"output_dir {self.path} is a file, not a directory")
        probe = unwritable_ancestor(self.path)
        if probe is not None:
            raise UnlearnError(f"output_dir {self.path} is not writable ({probe} does not allow writing)")

    def holds_config(self, config_text: str) -> bool:
        return self.config_file.is_file() and self.config_file.read_text(encoding="utf-8") == config_text

    def clear(self, inputs: Sequence[CommandInput] = ()) -> list[Path]:
        """Remove every entry this run owns, except those holding one of the command's ``inputs``, and nothing else
        in the directory (a symlink is removed, never what it points to). Returns what was removed."""
        removed = self.removable(inputs)
        for target in removed:
            remove_path(target)
        return removed

    def drop_leftovers(self) -> None:
        for target in self.leftovers():
            remove_path(target)

    def drop_checkpoint(self) -> None:
        remove_path(self.checkpoint_dir)

    # -- config ------------------------------------------------------------------------------------------
    def write_config(self, text: str) -> None:
        write_text(self.config_file, text)

    def read_config(self) -> dict[str, Any] | None:
        """The stored configuration as a mapping (None when missing or unreadable)."""
        if not self.config_file.is_file():
            return None
        try:
            loaded = yaml.safe_load(self.config_file.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            return None
        return loaded if isinstance(loaded, dict) else None

    def config_value(self, dotted: str) -> Any:
        node: Any = self.read_config() or {}
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    # -- logs --------------------------------------------------------------------------------------------
    def append_train_log(self, row: dict[str, Any]) -> None:
        append_jsonl(self.train_log_file, row)

    def read_train_log(self) -> list[dict[str, Any]]:
        return read_jsonl(self.train_log_file) if self.train_log_file.is_file() else []

    def append_epoch(self, row: dict[str, Any]) -> None:
        append_jsonl(self.epochs_file, row)

    def read_epochs(self) -> list[dict[str, Any]] | None:
        """Per-epoch rows, one per epoch (the last one written wins, as after a resume); None when absent."""
        if not self.epochs_file.is_file():
            return None
        try:
            by_epoch = {int(r["epoch"]): r for r in read_jsonl(self.epochs_file)}
        except (ValueError, KeyError, TypeError) as err:
            raise UnlearnError(f"{self.epochs_file}: malformed ({err})") from None
        return [by_epoch[k] for k in sorted(by_epoch)] or None

    def truncate_logs(self, step: int, epoch: int) -> None:
        """Drop log lines written after a checkpoint at (``step``, ``epoch``), so a resumed run's logs match an
        uninterrupted one."""
        if self.train_log_file.is_file():
            write_jsonl(self.train_log_file, [r for r in read_jsonl(self.train_log_file) if r["step"] <= step])
        if self.epochs_file.is_file():
            write_jsonl(self.epochs_file, [r for r in read_jsonl(self.epochs_file) if r["epoch"] <= epoch])

    def reset_logs(self) -> None:
        for path in (self.train_log_file, self.epochs_file):
            if path.exists():
                path.unlink()

    def rank_log_file(self, rank: int) -> Path:
        """Multi-process training: the items process ``rank`` trained on at each optimizer step."""
        return self.path / "ranks" / f"rank{rank}.jsonl"

    def append_rank_log(self, rank: int, row: dict[str, Any]) -> None:
        path = self.rank_log_file(rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        append_jsonl(path, row)

    def truncate_rank_log(self, rank: int, step: int) -> None:
        """Drop the rank's rows after optimizer step ``step`` (0: all of them; a fresh start)."""
        path = self.rank_log_file(rank)
        if path.is_file():
            write_jsonl(path, [r for r in read_jsonl(path) if r["step"] <= step])

    # -- evaluation rows ---------------------------------------------------------------------------------
    def write_eval_rows(self, set_name: str, rows: list[dict[str, Any]]) -> None:
        write_jsonl(self.eval_rows_file(set_name), rows)

    def read_eval_rows(self, set_name: str) -> list[dict[str, Any]] | None:
        path = self.eval_rows_file(set_name)
        if not path.is_file():
            return None
        try:
            return read_jsonl(path)
        except ValueError as err:
            raise UnlearnError(f"{path}: not valid JSON lines ({err})") from None

    def eval_sets(self) -> list[str]:
        """Names of the sets with saved per-sample rows."""
        return sorted(p.stem for p in self.eval_dir.glob("*.jsonl")) if self.eval_dir.is_dir() else []

    def write_tofu_log(self, log: dict[str, Any]) -> None:
        write_json(self.tofu_log_file, log)

    # -- results -----------------------------------------------------------------------------------------
    def write_results(self, results: RunResults) -> None:
        """``metrics.json``; call it last: it marks the run complete."""
        write_json(self.metrics_file, results.to_json())

    def read_results(self) -> RunResults:
        if not self.metrics_file.is_file():
            what = "does not exist" if not self.path.exists() else "has no metrics.json"
            raise UnlearnError(f"{self.path} is not a finished run directory: it {what} (give the output_dir of "
                               "unlearn finetune, run or eval)")
        try:
            raw = read_json(self.metrics_file)
        except ValueError as err:
            raise UnlearnError(f"{self.metrics_file}: not valid JSON ({err})") from None
        return RunResults.from_json(raw, str(self.metrics_file))

"""What an attack works on: a finished run directory with its saved model, read back with the run's own config.

Everything an attack needs (the run's model, its data and forget split, the retain model when there is one) is
checked here, before any model is loaded, and every problem is one line naming the path or key.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from unlearn.config import RunConfig, load_config
from unlearn.data.records import QARecord
from unlearn.errors import ConfigError, DataError, UnlearnError
from unlearn.experiments.plan import RunPlan, plan_evaluation
from unlearn.runs import RunDirectory, unwritable_ancestor
from unlearn.tasks.tofu.data import EVAL_FIELDS, TofuData

log = logging.getLogger("unlearn")


def command_line_trust(overrides: Sequence[str]) -> bool:
    """Whether this command line itself says ``model.trust_remote_code=true``: the only permission to run a model
    folder's own code (a run's stored config is not)."""
    own = [o for o in overrides if o.partition("=")[0].strip() == "model.trust_remote_code"]
    return bool(own) and load_config(RunConfig, None, own).model.trust_remote_code


def writable(folder: Path) -> None:
    """One line, before any model loads, when results cannot be written into ``folder`` (created or not)."""
    probe = unwritable_ancestor(folder)
    if probe is not None:
        raise UnlearnError(f"{folder} cannot be written ({probe} is read-only for this user): the attack's results "
                           "go there; make it writable or copy the run directory")


def saved_model(run: RunDirectory) -> Path | None:
    """The run's saved model directory, or None when it has none."""
    model = run.model_dir
    return model if (model / "config.json").is_file() else None


def run_of_model(path: str | Path | None) -> RunDirectory | None:
    """The run directory a model belongs to: ``path`` itself when it is a run directory with a saved model, its
    parent when ``path`` is a run's ``model/`` directory; None otherwise (a hub name, a bare model directory)."""
    if not path:
        return None
    p = Path(path)
    if saved_model(RunDirectory(p)) is not None:
        return RunDirectory(p)
    if p.name == RunDirectory.MODEL and (p / "config.json").is_file() and (p.parent / RunDirectory.CONFIG).is_file():
        return RunDirectory(p.parent)
    return None


@dataclass
class AttackTarget:
    """A run directory under attack: its evaluation planned from its config (``model.path`` pointing at the run's
    saved model), and its paths."""

    run: RunDirectory
    plan: RunPlan

    @property
    def cfg(self) -> RunConfig:
        return self.plan.cfg

    @classmethod
    def open(cls, run_dir: str | Path, overrides: Sequence[str] = ()) -> AttackTarget:
        """Check ``run_dir`` (a directory, a saved model, a config) and read its config with ``overrides``."""
        run = RunDirectory(run_dir)
        if not run.path.is_dir():
            raise UnlearnError(f"{run.path}: no such run directory")
        if saved_model(run) is None:
            raise UnlearnError(f"{run.path} holds no model ({run.model_dir}/config.json is missing): attacks need "
                               "the run's weights; rerun it with save_model=true (`unlearn demo save_models=true` "
                               "for the demo's runs)")
        if not run.config_file.is_file():
            raise UnlearnError(f"{run.path} has no {RunDirectory.CONFIG}: not a run directory of `unlearn`")
        if not run.is_complete():
            raise UnlearnError(f"{run.path} is an unfinished run (no {RunDirectory.METRICS}): an attack compares with "
                               "the run's own evaluation; finish the run first (`unlearn run … --resume`)")
        writable(run.attacks_dir)
        cfg = load_config(RunConfig, run.config_file, overrides)
        trust = command_line_trust(overrides)
        if cfg.model.trust_remote_code and not trust:
            log.warning("%s asks for model.trust_remote_code=true; a run directory is data, not permission: the "
                        "model loads without its own code (give model.trust_remote_code=true on this command line "
                        "to run it)", run.config_file)
        model = dataclasses.replace(cfg.model, path=str(run.model_dir), trust_remote_code=trust)
        return cls(run, plan_evaluation(dataclasses.replace(cfg, model=model)))

    @property
    def out_dir(self) -> Path:
        return self.run.attacks_dir

    @property
    def starting_model(self) -> str | None:
        """The model the run started from (its config's ``model.path``), e.g. the target model of an unlearning
        run."""
        return self.run.config_value("model.path")

    def require_tofu(self, attack: str) -> None:
        if self.cfg.eval.task != "tofu":
            raise ConfigError(f"the {attack} attack works on TOFU-layout question answering (eval.task=tofu); "
                              f"{self.run.path} was evaluated with eval.task={self.cfg.eval.task}")
        root = Path(self.cfg.data.root)
        if not root.is_dir():
            raise ConfigError(f"data.root {self.cfg.data.root!r} of {self.run.config_file} does not exist from "
                              f"here ({Path.cwd()}); give data.root=… on the command line")

    def forget_records(self, max_rows: int | None = None) -> list[QARecord]:
        """The forget split's evaluation rows (``<forget_split>_perturbed``), the first ``max_rows``."""
        split = f"{self.cfg.data.forget_split}_perturbed"
        records = TofuData(self.cfg.data.root).split(split, EVAL_FIELDS)
        if not records:
            raise DataError(f"{self.cfg.data.root}/{split} is empty")
        return records[:max_rows] if max_rows is not None else records

    def retain_run(self, given: str | None) -> RunDirectory | None:
        """The retain (Retrain) model's run directory with its saved model: ``given``, else the run's
        ``eval.retain_reference`` when that is a run directory holding a model; None when there is none."""
        path = given or self.cfg.eval.retain_reference
        if not path or not Path(path).is_dir():
            if given:
                raise ConfigError(f"retain_reference {given!r} is not a run directory")
            return None
        run = RunDirectory(path)
        if saved_model(run) is None:
            if given:
                raise ConfigError(f"retain_reference {given!r} holds no model ({run.model_dir}/config.json)")
            return None
        return run

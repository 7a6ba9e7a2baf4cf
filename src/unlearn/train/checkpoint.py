"""The resume checkpoint: trainable weights (safetensors), optimizer + scheduler + RNG state, and the loop's position
with a fingerprint of the run's configuration.

It is written with :func:`unlearn.io.atomic_dir`, which keeps the previous checkpoint until the new one is in place,
so a process killed while saving leaves a usable checkpoint (:func:`unlearn.io.recover_dir` restores it). A damaged
file is reported as one line naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from unlearn.errors import TrainingDiverged, UnlearnError
from unlearn.io import atomic_dir, recover_dir

STATE, WEIGHTS, OPTIMIZER = "state.json", "trainable.safetensors", "optim.pt"


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {(text[0] if text else '')[:160]}"


class CheckpointError(UnlearnError):
    """A checkpoint file is missing or damaged."""


class Checkpoint:
    def __init__(self, path: Path):
        self.path = Path(path)

    def exists(self) -> bool:
        recover_dir(self.path)
        return (self.path / STATE).is_file()

    def read_state(self) -> dict[str, Any]:
        """The position and fingerprint (``state.json``), without touching any weights."""
        file = self.path / STATE
        try:
            state = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{file}: damaged checkpoint state ({err}); remove {self.path} to start over "
                                  "without --resume") from None
        missing = [k for k in ("global_step", "epoch", "group", "settings") if k not in state]
        if not isinstance(state, dict) or missing:
            raise CheckpointError(f"{file}: damaged checkpoint state (missing {missing}); remove {self.path} to "
                                  "start over without --resume")
        return state

    def save(self, model: torch.nn.Module, optimizer, scheduler, state: dict[str, Any]) -> None:
        trainable = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        with atomic_dir(self.path) as tmp:
            save_file(trainable, str(tmp / WEIGHTS))
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "torch_rng": torch.get_rng_state()}, tmp / OPTIMIZER)
            (tmp / STATE).write_text(json.dumps(state, indent=2))

    def load(self, model: torch.nn.Module, optimizer, scheduler) -> dict[str, Any]:
        state = self.read_state()
        try:
            weights = load_file(str(self.path / WEIGHTS))
        except Exception as err:  # safetensors raises its own error types for truncated files
            raise CheckpointError(f"{self.path / WEIGHTS}: damaged checkpoint weights ({_short(err)})") from None
        params = dict(model.named_parameters())
        missing = [n for n in weights if n not in params]
        if missing:
            raise TrainingDiverged(f"checkpoint {self.path} does not match this model (e.g. {missing[0]}); "
                                   "remove it or use another output directory")
        try:
            extra = torch.load(self.path / OPTIMIZER, weights_only=True)
            optimizer.load_state_dict(extra["optimizer"])
            scheduler.load_state_dict(extra["scheduler"])
            rng = extra["torch_rng"]
        except Exception as err:  # a truncated pickle raises anything from EOFError to RuntimeError
            raise CheckpointError(f"{self.path / OPTIMIZER}: damaged optimizer state ({_short(err)}); remove "
                                  f"{self.path} to start over without --resume") from None
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value.to(params[name].device))
        torch.set_rng_state(rng)
        return state

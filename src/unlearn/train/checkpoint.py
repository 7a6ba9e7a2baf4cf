"""The resume checkpoint: trainable weights (safetensors), optimizer + scheduler + RNG state, and the loop's position.

It is written with :func:`unlearn.io.atomic_dir`, so an interrupted save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from unlearn.errors import TrainingDiverged
from unlearn.io import atomic_dir

STATE, WEIGHTS, OPTIMIZER = "state.json", "trainable.safetensors", "optim.pt"


class Checkpoint:
    def __init__(self, path: Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return (self.path / STATE).is_file()

    def save(self, model: torch.nn.Module, optimizer, scheduler, state: dict[str, Any]) -> None:
        trainable = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        with atomic_dir(self.path) as tmp:
            save_file(trainable, str(tmp / WEIGHTS))
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "torch_rng": torch.get_rng_state()}, tmp / OPTIMIZER)
            (tmp / STATE).write_text(json.dumps(state, indent=2))

    def load(self, model: torch.nn.Module, optimizer, scheduler) -> dict[str, Any]:
        state = json.loads((self.path / STATE).read_text())
        weights = load_file(str(self.path / WEIGHTS))
        params = dict(model.named_parameters())
        missing = [n for n in weights if n not in params]
        if missing:
            raise TrainingDiverged(f"checkpoint {self.path} does not match this model (e.g. {missing[0]}); "
                                   "remove it or use another output directory")
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value.to(params[name].device))
        extra = torch.load(self.path / OPTIMIZER, weights_only=True)
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        torch.set_rng_state(extra["torch_rng"])
        return state

"""What the scenario scripts take from the embedded demo: its settings, its benchmark regenerated with the scenario's
layout (the same seed writes the same authors), and its unlearning settings as run keys."""

from __future__ import annotations

import json
from pathlib import Path


def demo_settings(demo: Path) -> dict:
    """The demo's configuration, from its ``summary.json``."""
    return json.loads((demo / "summary.json").read_text())["config"]


def regenerated_data(demo: Path, config: dict, folder: Path, layout: str) -> Path:
    """``unlearn generate-data`` with the demo's seed into ``folder`` unless it already has ``layout``; checked byte
    for byte against the demo's ``full.json``, so the demo's target knows every author."""
    from unlearn.cli import main as cli

    if not (folder / layout).is_dir():
        assert cli(["generate-data", str(folder), "--authors", str(config["n_authors"]), "--questions",
                    str(config["questions_per_author"]), "--seed", str(config["seed"])]) == 0
    if (folder / "full.json").read_bytes() != (demo / "data" / "full.json").read_bytes():
        raise SystemExit(f"{folder}/full.json differs from the demo's: the target would not know these authors")
    return folder


def unlearning_args(config: dict) -> list[str]:
    """The demo's formatting, evaluation and unlearning settings as run keys."""
    return ["model.template=qa", "data.max_length=128", "eval.max_length=96",
            f"eval.batch_size={config['eval_batch_size']}", f"train.epochs={config['unlearn_epochs']}",
            f"train.lr={config['unlearn_lr']}", f"train.batch_size={config['unlearn_batch_size']}",
            f"train.grad_accum={config['unlearn_grad_accum']}", f"train.seed={config['seed']}", "progress=false"]

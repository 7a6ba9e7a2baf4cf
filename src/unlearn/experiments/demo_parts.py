"""Pieces every embedded demo shares (TOFU, MUSE, WMDP): the checks of their common settings, and building their
data and tiny base model once per specification, so an interrupted demo reuses what it already wrote."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig
from unlearn.config.parsing import build, check
from unlearn.io import atomic_dir, read_json, write_json
from unlearn.models.loading import save_model
from unlearn.models.tiny import build_tiny_model, tiny_llama_config
from unlearn.objectives.methods import build_method

COUNTS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size", "finetune_epochs",
          "finetune_batch_size", "unlearn_epochs", "unlearn_batch_size", "eval_batch_size")


def check_demo_settings(demo: Any, extra_counts: Sequence[str] = ()) -> None:
    """The settings every demo config has: sizes and counts ≥ 1, seed, width, learning rates, and every method and
    per-method override (built now, so a bad key is an error before any model is trained)."""
    for name in (*extra_counts, *COUNTS):
        check(getattr(demo, name) >= 1, name, "be at least 1", getattr(demo, name))
    check(demo.seed >= 0, "seed", "be ≥ 0", demo.seed)
    check(demo.hidden_size % demo.num_heads == 0, "hidden_size", f"be divisible by num_heads={demo.num_heads}",
          demo.hidden_size)
    for name in ("finetune_lr", "unlearn_lr"):
        check(getattr(demo, name) > 0, name, "be positive", getattr(demo, name))
    check(bool(demo.methods), "methods", "name at least one method", demo.methods)
    for method in demo.methods:
        build_method(method)
    unknown = sorted(set(demo.method_overrides) - set(demo.methods))
    check(not unknown, "method_overrides", f"name methods of `methods` ({', '.join(demo.methods)})", unknown)
    for method, tree in demo.method_overrides.items():
        cfg = build(RunConfig, {**tree, "method": {"name": method, **tree.get("method", {})}},
                    f"method_overrides.{method}.")
        build_method(cfg.method.name, cfg.forget, cfg.retain, cfg.method.forget_weight, cfg.method.retain_weight)


def build_once(directory: Path, marker: str, spec: dict[str, Any], write: Callable[[Path], object]) -> None:
    """``write`` into ``directory`` (atomically, with ``spec`` in its ``marker`` file) unless the marker already
    records ``spec``."""
    path = directory / marker
    if path.is_file() and read_json(path) == spec:
        return
    with atomic_dir(directory) as tmp:
        write(tmp)
        write_json(tmp / marker, spec)


def save_tiny_base(out_dir: Path, demo: Any, tokenizer: Any, **config: Any) -> None:
    """The demo's random-init tiny Llama (its width, depth, heads, MLP width and seed) and tokenizer, saved."""
    model_config = tiny_llama_config(len(tokenizer), demo.hidden_size, demo.num_layers, demo.num_heads,
                                     demo.intermediate_size, tokenizer=tokenizer, **config)
    save_model(build_tiny_model(model_config, seed=demo.seed), tokenizer, out_dir)

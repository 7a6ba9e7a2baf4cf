"""``unlearn demo``: the whole product on the embedded benchmark, on a CPU, in minutes.

1. generate the fictitious-authors benchmark (TOFU layout) and train a tokenizer on its text;
2. build a tiny Llama from a config; fine-tune it on ``full`` (+ the two general-knowledge sets) → target;
   the same recipe on ``retain90`` → the retain (Retrain) model, Forget Quality's gold standard;
3. unlearn ``forget10`` from the target with each method and evaluate everything the TOFU way;
4. print FQ / MU / forget ROUGE / forget Prob per method and write the run directory.

Stages whose results exist with the same configuration are reused, so an interrupted demo resumes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from unlearn.config import RunConfig, load_config
from unlearn.data.fictitious import generate_benchmark, training_texts
from unlearn.data.formatting import NAMED_TEMPLATES
from unlearn.evaluation.report import write_comparison
from unlearn.experiments.common import Timer, stage_needed
from unlearn.experiments.finetune import run_finetune
from unlearn.experiments.unlearning import run_unlearning
from unlearn.io import atomic_dir, read_json, write_json, write_text
from unlearn.models.loading import save_model
from unlearn.models.tiny import build_tiny_model, tiny_llama_config, train_tokenizer

DEFAULT_METHODS = ["ga+gd", "npo+gd", "simnpo+gd", "idk+gd", "dpo+gd", "me+gd", "idk+ap"]


@dataclass
class DemoConfig:
    output_dir: str = "runs/demo"
    seed: int = 0
    n_authors: int = 100
    questions_per_author: int = 10
    forget_split: str = "forget10"
    vocab_size: int = 1024
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 352
    finetune_epochs: int = 30
    finetune_lr: float = 3e-3
    finetune_batch_size: int = 32
    unlearn_epochs: int = 5
    unlearn_lr: float = 1e-3
    unlearn_batch_size: int = 8
    unlearn_grad_accum: int = 1
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    method_overrides: dict[str, list[str]] = field(default_factory=dict)
    """Extra ``key=value`` overrides per method, e.g. ``{"npo+gd": ["forget.beta=0.5"]}``."""
    eval_batch_size: int = 64
    progress: bool = True


def _base_config(demo: DemoConfig, data_dir: Path, model_dir: Path, run_dir: Path) -> dict[str, Any]:
    return {
        "model": {"path": str(model_dir), "template": "qa"},
        "data": {"root": str(data_dir), "forget_split": demo.forget_split, "max_length": 128},
        "eval": {"batch_size": demo.eval_batch_size, "max_length": 96},
        "output_dir": str(run_dir),
        "progress": demo.progress,
    }


def _finetune_config(demo: DemoConfig, data_dir: Path, base: Path, run_dir: Path, split: str,
                     retain_ref: Path | None) -> RunConfig:
    values = _base_config(demo, data_dir, base, run_dir)
    values["data"]["train_splits"] = [split, "real_authors", "world_facts"]
    values["train"] = {"epochs": demo.finetune_epochs, "lr": demo.finetune_lr, "batch_size": demo.finetune_batch_size,
                       "grad_accum": 1, "seed": demo.seed, "weight_decay": 0.01}
    values["save_model"] = True
    if retain_ref is not None:
        values["eval"]["retain_reference"] = str(retain_ref)
    return load_config(RunConfig, base=values)


def _unlearn_config(demo: DemoConfig, data_dir: Path, target: Path, run_dir: Path, method: str,
                    retain_ref: Path) -> RunConfig:
    values = _base_config(demo, data_dir, target, run_dir)
    values["method"] = {"name": method}
    values["train"] = {"epochs": demo.unlearn_epochs, "lr": demo.unlearn_lr, "batch_size": demo.unlearn_batch_size,
                       "grad_accum": demo.unlearn_grad_accum, "seed": demo.seed, "eval_every_epoch": True}
    values["eval"]["retain_reference"] = str(retain_ref)
    return load_config(RunConfig, base=values, overrides=demo.method_overrides.get(method, []))


def prepare_base(demo: DemoConfig, out: Path) -> tuple[Path, Path]:
    """Benchmark data and the random-init tiny model + tokenizer (deterministic for the seed)."""
    data_dir = out / "data"
    spec = {"n_authors": demo.n_authors, "questions_per_author": demo.questions_per_author, "seed": demo.seed}
    marker = data_dir / "generator.json"
    if not marker.is_file() or read_json(marker) != spec:
        with atomic_dir(data_dir) as tmp:
            generate_benchmark(tmp, **spec)
            write_json(tmp / "generator.json", spec)
    base_dir = out / "base_model"
    model_spec = {k: getattr(demo, k) for k in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                                                 "intermediate_size", "seed")} | spec
    marker = base_dir / "demo_model.json"
    if not marker.is_file() or read_json(marker) != model_spec:
        texts = training_texts(data_dir)
        texts += [NAMED_TEMPLATES["qa"].format(question=t) for t in texts[:2000]]
        tokenizer = train_tokenizer(texts, demo.vocab_size)
        config = tiny_llama_config(len(tokenizer), demo.hidden_size, demo.num_layers, demo.num_heads,
                                   demo.intermediate_size, tokenizer=tokenizer)
        model = build_tiny_model(config, seed=demo.seed)
        with atomic_dir(base_dir) as tmp:
            save_model(model, tokenizer, tmp)
            write_json(tmp / "demo_model.json", model_spec)
    return data_dir, base_dir


def _row(name: str, metrics: dict[str, Any], seconds: float | None = None) -> dict[str, Any]:
    forget = metrics["sets"].get("forget", {})
    return {
        "model": name,
        "forget_quality": metrics.get("forget_quality"),
        "model_utility_9": metrics.get("model_utility_9"),
        "forget_rouge": forget.get("rouge"),
        "forget_prob": forget.get("prob"),
        "forget_truth_ratio": forget.get("truth_ratio"),
        "seconds": seconds if seconds is not None else metrics.get("seconds"),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the demo's headline numbers."""
    def fmt(v: Any, key: str) -> str:
        if v is None:
            return "n/a"
        if key == "forget_quality":
            return f"{v:.2e}"
        if key == "seconds":
            return f"{v:.0f}"
        return f"{v:.3f}"

    keys = ["forget_quality", "model_utility_9", "forget_rouge", "forget_prob", "forget_truth_ratio", "seconds"]
    head = ["model", "FQ", "MU", "forget ROUGE", "forget Prob", "forget TR", "time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r["model"]] + [fmt(r[k], k) for k in keys]) + " |")
    return "\n".join(lines)


def run_demo(demo: DemoConfig, echo=print) -> Path:
    timer = Timer()
    out = Path(demo.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "demo_config.yaml", yaml.safe_dump(asdict(demo), sort_keys=False))
    echo(f"[1/4] benchmark + tiny model in {out}")
    data_dir, base_dir = prepare_base(demo, out)

    retain_split = f"retain{100 - int(demo.forget_split[-2:]):02d}"
    retain_dir, target_dir = out / "retain", out / "target"
    echo(f"[2/4] fine-tuning the retain model on {retain_split} (the Retrain gold standard)")
    retain_cfg = _finetune_config(demo, data_dir, base_dir, retain_dir, retain_split, None)
    if stage_needed(retain_dir, retain_cfg):
        run_finetune(retain_cfg, resume=True)
    echo("[3/4] fine-tuning the target model on full")
    target_cfg = _finetune_config(demo, data_dir, base_dir, target_dir, "full", retain_dir)
    if stage_needed(target_dir, target_cfg):
        run_finetune(target_cfg, resume=True)

    rows = [_row("target", read_json(target_dir / "metrics.json")),
            _row("retain", read_json(retain_dir / "metrics.json"))]
    echo(f"[4/4] unlearning {demo.forget_split} with {len(demo.methods)} methods")
    method_dirs = []
    for method in demo.methods:
        run_dir = out / "methods" / method.replace("+", "_")
        method_dirs.append(run_dir)
        cfg = _unlearn_config(demo, data_dir, target_dir / "model", run_dir, method, retain_dir)
        if stage_needed(run_dir, cfg):
            run_unlearning(cfg, resume=True)
        rows.append(_row(method, read_json(run_dir / "metrics.json")))
        echo(f"      {method}: FQ={rows[-1]['forget_quality']:.2e} MU={rows[-1]['model_utility_9']:.3f}")

    table = format_table(rows)
    run_dirs = [target_dir, retain_dir, *method_dirs]
    write_comparison(run_dirs, output_path=out / "comparison.md", plots_dir=out / "plots")
    summary = {"rows": rows, "total_seconds": timer.seconds, "config": asdict(demo)}
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", f"# unlearn demo\n\n{table}\n\nTotal time: {timer.seconds:.0f} s. "
               "All metrics (closer-look included), comparison plots and example generations: "
               "[comparison.md](comparison.md); one report.md per run directory.\n")
    echo("")
    echo(table)
    echo(f"\nEverything is in {out} (summary.md, per-run metrics.json and eval/*.jsonl). "
         f"Total {timer.seconds:.0f} s.")
    return out

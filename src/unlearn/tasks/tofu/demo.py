"""``unlearn demo`` (benchmark ``tofu``, the default): the whole product on the embedded fictitious authors, on a
CPU, in minutes.

1. generate the fictitious-authors benchmark (TOFU layout, :mod:`.embedded`) and train a tokenizer on its text;
2. build a tiny Llama from a config; fine-tune it on ``retain90`` → the retain (Retrain) model, Forget Quality's
   gold standard; the same recipe on ``full`` (+ the two general-knowledge sets) → target;
3. unlearn ``forget10`` from the target with each method and evaluate everything the TOFU way;
4. print FQ / MU / forget ROUGE / forget Prob per method and write the run directories.

The method recipe is the toolkit's TOFU recipe (:mod:`unlearn.config.recipes`; the embedded benchmark is in TOFU's
layout, ``eval.task=tofu``): SimNPO β 4.5 and forget weight 0.125 on forget10, ME α 0.1, NPO/DPO/AP β 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig, load_config
from unlearn.config.parsing import check, merge, setting
from unlearn.data.formatting import NAMED_TEMPLATES
from unlearn.models.tiny import train_tokenizer
from unlearn.rendering.tables import fmt, fmt_fq, md_table
from unlearn.runs import RunDirectory, RunResults
from unlearn.tasks.demo import (
    DemoRecipe,
    ReferenceStage,
    build_once,
    check_demo_settings,
    register_demo,
    save_tiny_base,
)
from unlearn.tasks.tofu.data import forget_percent
from unlearn.tasks.tofu.embedded import generate_benchmark, training_texts, write_general_task
from unlearn.tasks.tofu.task import TofuMetrics

DEFAULT_METHODS = ["ga+gd", "npo+gd", "simnpo+gd", "idk+gd", "dpo+gd", "me+gd", "idk+ap"]


@dataclass
class DemoConfig:
    benchmark: str = setting("tofu", "the embedded benchmark: `tofu` (fictitious authors, TOFU layout), `muse` "
                                     "(fictitious news, MUSE layout) or `wmdp` (WMDP-style multiple choice); the "
                                     "last two have their own keys: docs/configuration.md")
    output_dir: str = setting("runs/demo", "where everything goes")
    seed: int = setting(0, "benchmark, initialisation, data order")
    n_authors: int = setting(100, "fictitious authors in the generated benchmark")
    questions_per_author: int = setting(10, "questions per author (1–10)")
    forget_split: str = setting("forget10", "split to unlearn")
    vocab_size: int = setting(1024, "BPE vocabulary trained on the benchmark's text")
    hidden_size: int = setting(128, "tiny Llama width")
    num_layers: int = setting(4, "tiny Llama depth")
    num_heads: int = setting(4, "attention heads")
    intermediate_size: int = setting(352, "MLP width")
    finetune_epochs: int = setting(30, "epochs for the target and retain models")
    finetune_lr: float = setting(3e-3, "their learning rate")
    finetune_batch_size: int = setting(32, "their batch size")
    unlearn_epochs: int = setting(5, "unlearning epochs per method")
    unlearn_lr: float = setting(1e-3, "unlearning learning rate")
    unlearn_batch_size: int = setting(8, "forget items per unlearning step")
    unlearn_grad_accum: int = setting(1, "micro-batches per unlearning step")
    methods: list[str] = setting(doc="methods to run (default: the seven seed methods)",
                                 factory=lambda: list(DEFAULT_METHODS))
    method_overrides: dict[str, dict[str, Any]] = setting(
        doc="run-config keys per method, in the same syntax: `method_overrides.npo+gd.forget.beta=0.5`",
        factory=dict)
    eval_batch_size: int = setting(64, "evaluation batch size")
    progress: bool = setting(True, "progress bars")
    save_models: bool = setting(False, "also save each method's unlearned model (`methods/<name>/model/`), e.g. for "
                                       "`unlearn attack`")

    def __post_init__(self) -> None:
        check(self.benchmark == "tofu", "benchmark", "be tofu, muse or wmdp", self.benchmark)
        check(1 <= self.questions_per_author <= 10, "questions_per_author", "be in 1..10", self.questions_per_author)
        forget_percent(self.forget_split)
        check_demo_settings(self, ("n_authors", "unlearn_grad_accum"))


def _base_config(demo: DemoConfig, data_dir: Path, model_dir: Path, run_dir: Path) -> dict[str, Any]:
    return {
        "model": {"path": str(model_dir), "template": "qa"},
        "data": {"root": str(data_dir), "forget_split": demo.forget_split, "max_length": 128},
        "eval": {"batch_size": demo.eval_batch_size, "max_length": 96},
        "output_dir": str(run_dir),
        "progress": demo.progress,
    }


def retain_split(demo: DemoConfig) -> str:
    return f"retain{100 - forget_percent(demo.forget_split):02d}"


class TofuDemo(DemoRecipe):
    benchmark = "tofu"
    config_class = DemoConfig
    title = "unlearn demo"
    data_message = "benchmark + tiny model"
    reference = "retain"
    comparison_plots = True

    def prepare(self, demo: DemoConfig, out: Path) -> tuple[Path, Path]:
        data_dir = out / "data"
        spec = {"n_authors": demo.n_authors, "questions_per_author": demo.questions_per_author, "seed": demo.seed}
        build_once(data_dir, "generator.json", spec, lambda tmp: generate_benchmark(tmp, **spec))
        write_general_task(data_dir / "real_world")  # its task file names its data by path, so after the data moved
        base_dir = out / "base_model"
        model_spec = {k: getattr(demo, k) for k in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                                                     "intermediate_size", "seed")} | spec

        def write_model(tmp: Path) -> None:
            texts = training_texts(data_dir)
            texts += [NAMED_TEMPLATES["qa"].format(question=t) for t in texts[:2000]]
            save_tiny_base(tmp, demo, train_tokenizer(texts, demo.vocab_size))

        build_once(base_dir, "demo_model.json", model_spec, write_model)
        return data_dir, base_dir

    def stages(self, demo: DemoConfig) -> list[ReferenceStage]:
        return [ReferenceStage("retain", "retain", f"fine-tuning the retain model on {retain_split(demo)} (the "
                                                   "Retrain gold standard)"),
                ReferenceStage("target", "target", "fine-tuning the target model on full", reference="retain")]

    def finetune_config(self, demo: DemoConfig, data_dir: Path, base: Path, run_dir: Path, stage: ReferenceStage,
                        reference: Path | None) -> RunConfig:
        values = _base_config(demo, data_dir, base, run_dir)
        split = "full" if stage.directory == "target" else retain_split(demo)
        values["data"]["train_splits"] = [split, "real_authors", "world_facts"]
        values["train"] = {"epochs": demo.finetune_epochs, "lr": demo.finetune_lr,
                           "batch_size": demo.finetune_batch_size, "grad_accum": 1, "seed": demo.seed,
                           "weight_decay": 0.01}
        values["save_model"] = True
        if reference is not None:
            values["eval"]["retain_reference"] = str(reference)
        return load_config(RunConfig, base=values)

    def unlearn_message(self, demo: DemoConfig) -> str:
        return demo.forget_split

    def unlearn_config(self, demo: DemoConfig, data_dir: Path, target: Path, run_dir: Path, method: str,
                       reference: Path | None) -> RunConfig:
        values = _base_config(demo, data_dir, target, run_dir)
        values["method"] = {"name": method}
        values["train"] = {"epochs": demo.unlearn_epochs, "lr": demo.unlearn_lr,
                           "batch_size": demo.unlearn_batch_size, "grad_accum": demo.unlearn_grad_accum,
                           "seed": demo.seed, "eval_every_epoch": True}
        values["eval"]["retain_reference"] = str(reference)
        values["save_model"] = demo.save_models
        return load_config(RunConfig, base=merge(values, demo.method_overrides.get(method, {})))

    def row(self, name: str, results: RunResults) -> dict[str, Any]:
        return {"model": name, **TofuMetrics.from_dict(results.metrics).headline(), "seconds": results.seconds}

    def progress(self, name: str, row: dict[str, Any]) -> str:
        return f"      {name}: FQ={fmt_fq(row['forget_quality'])} MU={fmt(row['model_utility_9'])}"

    def table(self, rows: list[dict[str, Any]]) -> str:
        keys = ["model_utility_9", "forget_rouge", "forget_prob", "forget_truth_ratio"]
        head = ["model", "FQ", "MU", "forget ROUGE", "forget Prob", "forget TR", "time (s)"]
        return md_table(head, [[r["model"], fmt_fq(r["forget_quality"]), *(fmt(r[k]) for k in keys),
                                fmt(r["seconds"], 0)] for r in rows])

    def summary_note(self, seconds: float, figures: str) -> str:
        return (f"Total time: {seconds:.0f} s. All metrics (closer-look included), comparison plots and example "
                f"generations: [comparison.md](comparison.md); one {RunDirectory.REPORT} per run directory.\n")

    def contents(self) -> str:
        return f"summary.md, per-run {RunDirectory.METRICS} and {RunDirectory.EVAL}/*.jsonl"


register_demo(TofuDemo())

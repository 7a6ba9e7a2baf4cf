"""``unlearn demo benchmark=muse``: the MUSE path on the embedded fictitious news, on a CPU, in minutes.

1. generate the fictitious-news benchmark (MUSE layout) and train a tokenizer on its training text;
2. build a tiny Llama; fine-tune it on forget ∪ retain articles → target; on the retain articles only → the
   retrained model (PrivLeak's AUC_retrain is measured on it);
3. unlearn ``raw/forget`` from the target with each method (GD regularizes on ``raw/retain2``) and evaluate the
   MUSE way: VerbMem, KnowMem forget / retain, PrivLeak and the membership-inference suite;
4. print the MUSE table and write the comparison.

Stages whose results exist with the same configuration are reused, so an interrupted demo resumes. Recipe: the
neutral objective defaults (NPO β 0.1, SimNPO β 2.5 γ 0, weights 1; Task Vector α 5 as MUSE) with a learning rate
scaled to the tiny model — not the paper's 7B recipe (lr 1e-5), which would not move a model this small in 5 epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig, load_config
from unlearn.config.parsing import check, merge, setting
from unlearn.models.tiny import train_tokenizer
from unlearn.rendering.tables import fmt, md_table
from unlearn.runs import RunDirectory, RunResults
from unlearn.tasks.demo import (
    DemoRecipe,
    ReferenceStage,
    build_once,
    check_demo_settings,
    register_demo,
    save_tiny_base,
)
from unlearn.tasks.muse.embedded import TOKENIZER_CORPUS, generate_news_benchmark, news_training_texts
from unlearn.tasks.muse.report import MUSE_COLUMNS

DEFAULT_METHODS = ["ga+gd", "npo+gd", "simnpo+gd", "task_vector"]
TASK = "muse"
RETAIN_SPLIT = "raw/retain2"


@dataclass
class MuseDemoConfig:
    benchmark: str = setting("muse", "the embedded benchmark: `muse` (fictitious news); `tofu` is the default demo")
    output_dir: str = setting("runs/demo_muse", "where everything goes")
    seed: int = setting(0, "benchmark, initialisation, data order")
    n_articles: int = setting(20, "forget, retain and holdout articles each")
    vocab_size: int = setting(1024, "BPE vocabulary trained on the benchmark's text")
    hidden_size: int = setting(192, "tiny Llama width")
    num_layers: int = setting(4, "tiny Llama depth")
    num_heads: int = setting(4, "attention heads")
    intermediate_size: int = setting(512, "MLP width")
    max_length: int = setting(256, "tokens per training chunk (MUSE: 2048)")
    finetune_epochs: int = setting(60, "epochs for the target and retrained models")
    finetune_lr: float = setting(3e-3, "their learning rate")
    finetune_batch_size: int = setting(4, "their batch size (chunks)")
    unlearn_epochs: int = setting(5, "unlearning epochs per method")
    unlearn_lr: float = setting(1e-3, "unlearning learning rate")
    unlearn_batch_size: int = setting(4, "forget chunks per unlearning step")
    methods: list[str] = setting(doc="methods to run (default: GA+GD, NPO+GD, SimNPO+GD, Task Vector)",
                                 factory=lambda: list(DEFAULT_METHODS))
    method_overrides: dict[str, dict[str, Any]] = setting(
        doc="run-config keys per method: `method_overrides.npo+gd.forget.beta=0.5`", factory=dict)
    eval_every_epoch: bool = setting(True, "evaluate after every unlearning epoch (the per-epoch curves)")
    eval_batch_size: int = setting(32, "evaluation batch size")
    progress: bool = setting(True, "progress bars")

    def __post_init__(self) -> None:
        check(self.benchmark == "muse", "benchmark", "be muse here", self.benchmark)
        check(self.n_articles >= 4, "n_articles", "be at least 4 (four sequential requests)", self.n_articles)
        check(self.max_length >= 16, "max_length", "be at least 16", self.max_length)
        check_demo_settings(self)


def _base_config(demo: MuseDemoConfig, data_dir: Path, model_dir: Path, run_dir: Path) -> dict[str, Any]:
    return {
        "model": {"path": str(model_dir), "template": "qa"},
        "data": {"root": str(data_dir), "max_length": demo.max_length, "retain_split": RETAIN_SPLIT},
        "eval": {"task": TASK, "batch_size": demo.eval_batch_size},
        "output_dir": str(run_dir),
        "progress": demo.progress,
    }


class MuseDemo(DemoRecipe):
    benchmark = "muse"
    config_class = MuseDemoConfig
    title = "unlearn demo benchmark=muse"
    data_message = "fictitious-news benchmark + tiny model"
    reference = "retain"

    def prepare(self, demo: MuseDemoConfig, out: Path) -> tuple[Path, Path]:
        data_dir = out / "data"
        spec = {"n_forget": demo.n_articles, "n_retain": demo.n_articles, "n_holdout": demo.n_articles,
                "seed": demo.seed}
        # data and tokenizer of earlier demos (no tokenizer corpus) are rebuilt
        version = {"tokenizer": TOKENIZER_CORPUS}
        build_once(data_dir, "generator.json", spec | version, lambda tmp: generate_news_benchmark(tmp, **spec))
        base_dir = out / "base_model"
        model_spec = {k: getattr(demo, k) for k in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                                                     "intermediate_size", "max_length", "seed")} | spec | version

        def write_model(tmp: Path) -> None:
            # spaces as tokens of their own: MUSE's KnowMem prompt ends in "Answer: " (see train_tokenizer); trained
            # on articles of no set, so it cannot tell members from non-members (news_training_texts)
            tokenizer = train_tokenizer(news_training_texts(data_dir), demo.vocab_size, separate_spaces=True)
            save_tiny_base(tmp, demo, tokenizer, max_position_embeddings=max(512, demo.max_length))

        build_once(base_dir, "demo_model.json", model_spec, write_model)
        return data_dir, base_dir

    def stages(self, demo: MuseDemoConfig) -> list[ReferenceStage]:
        return [ReferenceStage("retain", "retrained", f"fine-tuning the retrained model on {RETAIN_SPLIT} (PrivLeak's "
                                                      "reference)"),
                ReferenceStage("target", "target", f"fine-tuning the target model on raw/forget + {RETAIN_SPLIT}",
                               reference="retain")]

    def finetune_config(self, demo: MuseDemoConfig, data_dir: Path, base: Path, run_dir: Path,
                        stage: ReferenceStage, reference: Path | None) -> RunConfig:
        values = _base_config(demo, data_dir, base, run_dir)
        values["data"]["train_splits"] = ["raw/forget", RETAIN_SPLIT] if stage.directory == "target" else [RETAIN_SPLIT]
        values["train"] = {"epochs": demo.finetune_epochs, "lr": demo.finetune_lr,
                           "batch_size": demo.finetune_batch_size, "grad_accum": 1, "seed": demo.seed,
                           "weight_decay": 0.01}
        values["save_model"] = True
        if reference is not None:
            values["eval"]["retain_reference"] = str(reference)
        return load_config(RunConfig, base=values)

    def unlearn_message(self, demo: MuseDemoConfig) -> str:
        return "raw/forget"

    def unlearn_config(self, demo: MuseDemoConfig, data_dir: Path, target: Path, run_dir: Path, method: str,
                       reference: Path | None) -> RunConfig:
        values = _base_config(demo, data_dir, target, run_dir)
        values["method"] = {"name": method}
        values["train"] = {"epochs": demo.unlearn_epochs, "lr": demo.unlearn_lr,
                           "batch_size": demo.unlearn_batch_size, "grad_accum": 1, "seed": demo.seed,
                           "eval_every_epoch": demo.eval_every_epoch}
        values["eval"]["retain_reference"] = str(reference)
        return load_config(RunConfig, base=merge(values, demo.method_overrides.get(method, {})))

    def row(self, name: str, results: RunResults) -> dict[str, Any]:
        m = results.metrics
        return {"model": name, **{key: m.get(key) for key, _, _ in MUSE_COLUMNS}, "privleak": m.get("privleak"),
                "privleak_auc": m.get("privleak_auc"), "seconds": results.seconds}

    def progress(self, name: str, row: dict[str, Any]) -> str:
        return (f"      {name}: VerbMem={fmt(row['verbmem_f'], 1)} KnowMem forget={fmt(row['knowmem_f'], 1)} "
                f"retain={fmt(row['knowmem_r'], 1)} PrivLeak={fmt(row['privleak'], 1)}")

    def table(self, rows: list[dict[str, Any]]) -> str:
        body = [[r["model"], *(fmt(r[k], 2) for k, _, _ in MUSE_COLUMNS), fmt(r["privleak"], 2),
                 fmt(r["privleak_auc"], 3), fmt(r["seconds"], 0)] for r in rows]
        return md_table(["model", *(label for _, label, _ in MUSE_COLUMNS), "PrivLeak (→ 0)", "Min-40% AUC",
                         "time (s)"], body)

    def comparison_names(self, labels: list[str], methods: list[str]) -> list[str] | None:
        return [*labels, *methods]

    def summary_note(self, seconds: float, figures: str) -> str:
        return (f"Total time: {seconds:.0f} s. PrivLeak is missing for the retrained model: it is the model PrivLeak "
                "compares with (0 by definition). Membership-inference AUCs of every attack: "
                f"[comparison.md](comparison.md); one {RunDirectory.REPORT} per run directory.\n")

    def contents(self) -> str:
        return f"summary.md, per-run {RunDirectory.METRICS}, {RunDirectory.REPORT} and {RunDirectory.EVAL}/*.jsonl"


register_demo(MuseDemo())

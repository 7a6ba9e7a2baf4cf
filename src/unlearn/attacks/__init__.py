"""Attacks on a finished run (``unlearn attack NAME RUN_DIR``): does the forgotten knowledge come back when the
model is asked differently (``paraphrase``), sampled (``leak``) or fine-tuned on a little forget data
(``relearn``), or quantized (``quantize``)? Each writes ``RUN_DIR/attacks/NAME.json`` (the
summary) and ``NAME_rows.jsonl`` (per question), and adds its section to the run's report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from unlearn.registry import Registry, RegistryError


@dataclass(frozen=True)
class Attack:
    name: str
    summary: str
    run: Callable[..., tuple[dict[str, Any], Any]]
    check: Callable[..., None]
    """Every input problem of the attack, raised before any model loads."""
    loads_model: bool = True
    """False: it loads fresh copies of the saved weights itself (relearning, quantizing); only the tokenizer is
    loaded for it."""


def _builtin_attacks() -> None:
    from unlearn.attacks.leak import check_leak, run_leak
    from unlearn.attacks.paraphrase import check_paraphrase, run_paraphrase
    from unlearn.attacks.quantize import check_quantize, run_quantize
    from unlearn.attacks.relearn import check_relearn, run_relearn

    for attack in (
        Attack("paraphrase", "the forget metrics with TOFU's paraphrased_question asked instead of question",
               run_paraphrase, check_paraphrase),
        Attack("leak", "leak@k: k sampled answers per forget question at temperature T; the fraction whose best "
                       "sample reaches the ROUGE-L threshold, beside greedy decoding's", run_leak, check_leak),
        Attack("relearn", "fine-tune on a fraction of the forget set (random subsets over seeds, or the shortest "
                          "answers) for a few epochs; FQ and forget metrics per epoch, beside the target model's",
               run_relearn, check_relearn, loads_model=False),
        Attack("quantize", "8- and 4-bit weight quantization (optimum-quanto), then the run's evaluation again; "
                           "says when quantization restores forgotten knowledge", run_quantize, check_quantize,
               loads_model=False),
    ):
        register_attack(attack)


ATTACKS: Registry[Attack] = Registry("attack", loader=_builtin_attacks)


def register_attack(attack: Attack) -> Attack:
    """Add an :class:`Attack` under its name (a plugin's too: :func:`unlearn.extend.register_attack`)."""
    if not isinstance(attack, Attack):
        raise RegistryError(f"register_attack expects an Attack, got {type(attack).__name__}")
    return ATTACKS.register(attack.name, attack, origin=getattr(attack.run, "__module__", ""))


def get_attack(name: str) -> Attack:
    return ATTACKS.get_entry(name)


def run_attack(name: str, run_dir: str | Path, overrides: Sequence[str] = (), config: str | None = None) -> Path:
    """Check everything, load the run's model once, attack it, write the results atomically (with their
    provenance); return the JSON path."""
    from unlearn.attacks.config import load_attack_config, split_overrides
    from unlearn.attacks.target import AttackTarget
    from unlearn.data.files import recording_reads
    from unlearn.experiments.common import Timer
    from unlearn.experiments.pipeline import provenance_of
    from unlearn.experiments.plan import limit_note
    from unlearn.io import write_json, write_jsonl

    attack = get_attack(name)
    attack_overrides, run_overrides = split_overrides(overrides)
    settings = load_attack_config(config, attack_overrides)
    target = AttackTarget.open(run_dir, run_overrides)
    target.require_tofu(name)
    attack.check(target, settings)
    timer = Timer()
    cfg = target.cfg
    with recording_reads() as reads:
        summary, rows = _attack(attack, target, settings, cfg)
    out = target.out_dir
    if isinstance(rows, dict):
        for variant, variant_rows in rows.items():
            write_jsonl(out / f"{name}_{variant}_rows.jsonl", variant_rows)
    else:
        write_jsonl(out / f"{name}_rows.jsonl", rows)
    record = {"attack": name, "run": str(target.run.path), "model": cfg.model.path,
              "settings": asdict(settings), "seconds": timer.seconds, **summary, **limit_note(cfg),
              "provenance": provenance_of(target.plan, reads)}
    write_json(out / f"{name}.json", record)
    return out / f"{name}.json"


def _attack(attack: Attack, target: Any, settings: Any, cfg: Any) -> tuple[dict[str, Any], Any]:
    """The attack on the run's model (loaded once, on the accelerator's device, when it needs it)."""
    import torch

    from unlearn.data.formatting import ChatFormatter
    from unlearn.experiments.common import load_model, make_accelerator
    from unlearn.models.loading import load_tokenizer, resolve_model

    if not attack.loads_model:
        tokenizer = load_tokenizer(resolve_model(cfg.model.path), cfg.model.tokenizer, cfg.model.trust_remote_code)
        summary, rows = attack.run(target, settings, None,
                                   ChatFormatter(tokenizer, cfg.model.template, cfg.model.system_prompt), None)
    else:
        model, _, formatter = load_model(cfg)
        accelerator = make_accelerator(cfg)
        model.to(accelerator.device)
        with torch.no_grad(), accelerator.autocast():
            summary, rows = attack.run(target, settings, model, formatter, accelerator.device)
    return summary, rows

"""The method registry. Two kinds of method, both looked up by name:

- **loss methods**: one forget objective × one retain regularizer × weights (``simnpo+gd``, ``npo+kl``, ``idk+ap``,
  ``ga``); ``loss(step)`` = forget_weight · L_forget + retain_weight · L_retain (SimNPO eq. 2);
- **weight-edit methods**: fine-tune, then edit the weights (``task_vector``; :mod:`.weight_edit`).

Parameters start from the components' neutral defaults, then the run's recipe (:mod:`unlearn.config.recipes`), then
what the user set explicitly. No string dispatch beyond the registry lookups.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from unlearn.config.recipes import NONE, ResolvedRecipe, describe_recipes, resolve_recipe
from unlearn.data.parts import PARTS, part_order
from unlearn.errors import ConfigError
from unlearn.objectives.components import (
    FORGET_OBJECTIVES,
    REGULARIZERS,
    ForgetObjective,
    Measure,
    Regularizer,
    describe_params,
    make_params,
)
from unlearn.objectives.needs import GeneratedAnswers, Need, StepInputs, merge_needs
from unlearn.objectives.weight_edit import WEIGHT_EDIT_METHODS, WeightEditMethod

ALIASES = {"graddiff": "ga+gd", "w-graddiff": "lwga+gd", "wgraddiff": "lwga+gd", "tv": "task_vector",
           "rmu": "rmu+act"}
RENAMED = {"wga": "`wga` is token-weighted gradient ascent (Wang et al., 2025; OpenUnlearning's WGA) since 0.2; "
                  "before, it named SimNPO's length-weighted W-GradDiff objective, now `lwga` (method=lwga+gd, "
                  "alias w-graddiff)"}
"""Forget objectives whose name once meant another objective: a run that uses one is told (log and ``unlearn
methods``), and a stored run of the old meaning is named in the error that refuses to continue it."""
_told: set[str] = set()


def rename_note(method_name: object) -> str:
    """``"; note: …"`` when ``method_name`` (a stored run's) names a renamed forget objective, else ``""``: the
    sentence that tells a stale configuration what its name means now."""
    if not isinstance(method_name, str):
        return ""
    forget = method_name.strip().lower().partition("+")[0]
    return f"; note: {RENAMED[forget]}" if forget in RENAMED else ""


@dataclass
class LossMethod:
    """forget objective × regularizer × weights."""

    kind: ClassVar[str] = "loss"
    name: str
    forget: ForgetObjective
    regularizer: Regularizer
    forget_weight: float
    retain_weight: float
    recipe: ResolvedRecipe | None = None

    @property
    def needs(self) -> dict[str, Need]:
        """One merged need per batch part, in the order of the forward passes."""
        merged = merge_needs(self.forget.needs() + self.regularizer.needs())
        return {part: merged[part] for part in part_order(list(merged))}

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.needs)

    @property
    def cached_reference_parts(self) -> tuple[str, ...]:
        return tuple(p for p, n in self.needs.items() if n.reference_logp)

    @property
    def padded_parts(self) -> tuple[str, ...]:
        return tuple(p for p, n in self.needs.items() if n.pad_to_max_length)

    @property
    def needs_reference_model(self) -> bool:
        """A frozen reference at every step (its outputs, not only cached log-likelihoods)."""
        return any(n.reference_outputs for n in self.needs.values())

    @property
    def needs_reference(self) -> bool:
        return self.needs_reference_model or bool(self.cached_reference_parts)

    @property
    def needs_retain(self) -> bool:
        return any(PARTS[p].side == "retain" for p in self.parts)

    @property
    def idk_users(self) -> tuple[str, ...]:
        """Names of the components that read an IDK part (they need refusal templates)."""
        return tuple(obj.name for obj in (self.forget, self.regularizer)
                     if any(PARTS[n.part].needs_idk for n in obj.needs()))

    def prepare(self, model: torch.nn.Module, seed: int) -> None:
        """Bind model-dependent state before training (RMU: its layer, control vector and trainable parameters;
        its regularizer reads the same layer). Other components need none."""
        if hasattr(self.forget, "prepare"):
            self.forget.prepare(model, seed)
        if hasattr(self.regularizer, "prepare"):
            self.regularizer.prepare(model, seed, getattr(self.forget, "layer_resolved", None))

    @property
    def lora_targets(self) -> tuple[str, ...] | None:
        """The modules LoRA must adapt when the method picks its own trainable parameters (RMU, after
        :meth:`prepare`), else None (the user's ``train.lora_target_modules``)."""
        return getattr(self.forget, "trained_modules", None) or None

    def loss(self, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its parts (unweighted) for logging, with what the objectives :meth:`~Objective.record`."""
        forget_loss = self.forget.loss(step)
        retain_loss = self.regularizer.loss(step)
        total = self.forget_weight * forget_loss + self.retain_weight * retain_loss
        logged = {"forget_loss": forget_loss.detach(), "retain_loss": retain_loss.detach()}
        for objective in self.objectives.values():
            logged.update(objective.take_records())
        return total, logged

    # ------------------------------------------------------------------ state across steps (PDU's dual variable)
    @property
    def objectives(self) -> dict[str, ForgetObjective | Regularizer]:
        """The two components by config section (``forget``, ``retain``)."""
        return {"forget": self.forget, "retain": self.regularizer}

    @property
    def generated_answers(self) -> tuple[GeneratedAnswers, ...]:
        """What the components ask the starting model to write before training (AltPO's alternatives)."""
        return tuple(g for o in self.objectives.values() if (g := o.generated_answers()) is not None)

    @property
    def stateful(self) -> bool:
        """Whether a component keeps state across steps (then stored in every checkpoint)."""
        return any(o.state_dict() for o in self.objectives.values())

    def state_dict(self) -> dict[str, dict[str, float]]:
        return {section: state for section, o in self.objectives.items() if (state := o.state_dict())}

    def load_state_dict(self, state: Mapping[str, Mapping[str, float]]) -> None:
        for section, o in self.objectives.items():
            if section in state:
                o.load_state_dict(state[section])

    def after_step(self, logs: Mapping[str, float], epoch: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for o in self.objectives.values():
            out.update(o.after_step(logs, epoch))
        return out

    def after_epoch(self, epoch: int, measure: Measure) -> dict[str, float]:
        out: dict[str, float] = {}
        for o in self.objectives.values():
            out.update(o.after_epoch(epoch, measure))
        return out

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "forget": {"objective": self.forget.name, **dataclasses.asdict(self.forget.params)},
            "retain": {"regularizer": self.regularizer.name, **dataclasses.asdict(self.regularizer.params)},
            "forget_weight": self.forget_weight,
            "retain_weight": self.retain_weight,
        }
        if self.recipe is not None:
            out["recipe"] = self.recipe.describe()
        return out


Method = LossMethod | WeightEditMethod


def _canonical(name: str) -> str:
    key = name.strip().lower()
    return ALIASES.get(key, key)


def parse_method_name(name: str) -> tuple[str, str]:
    """``"simnpo+gd"`` → ("simnpo", "gd"); a bare forget name has no regularizer."""
    key = _canonical(name)
    forget_name, plus, reg_name = key.partition("+")
    reg_name = reg_name if plus else "none"
    form = (f"write FORGET+REGULARIZER with FORGET in {{{', '.join(FORGET_OBJECTIVES)}}} and REGULARIZER in "
            f"{{{', '.join(REGULARIZERS)}}} (e.g. simnpo+gd, npo+kl, idk+ap, ga), or a weight-edit method "
            f"({', '.join(WEIGHT_EDIT_METHODS)})")
    if "+" in reg_name:
        raise ConfigError(f"unknown method {name!r}: one regularizer at most; {form}")
    for part, registry in ((forget_name, FORGET_OBJECTIVES), (reg_name, REGULARIZERS)):
        if part not in registry:
            if registry is FORGET_OBJECTIVES and part in WEIGHT_EDIT_METHODS:
                raise ConfigError(f"unknown method {name!r}: {part} is a weight-edit method and takes no regularizer")
            raise ConfigError(f"unknown method {name!r}: {registry.unknown(part)}; {form}")
    return FORGET_OBJECTIVES.canonical(forget_name), REGULARIZERS.canonical(reg_name)


def _check_weight(label: str, w: Any) -> float:
    if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0:
        raise ConfigError(f"method.{label} must be a non-negative number, got {w!r}")
    return float(w)


def build_method(
    name: str,
    forget_params: Mapping[str, Any] | None = None,
    retain_params: Mapping[str, Any] | None = None,
    forget_weight: float | None = None,
    retain_weight: float | None = None,
    *,
    recipe: str = NONE,
    benchmark: str = "",
    forget_split: str | None = None,
) -> Method:
    """Compose a method by name. Values: explicit arguments ← the recipe ``recipe`` resolves for (``benchmark``,
    ``forget_split``, method) ← the components' neutral defaults. ``recipe="none"`` (the default here) uses no
    recipe; the pipelines pass ``method.recipe`` (``auto``)."""
    forget_params, retain_params = dict(forget_params or {}), dict(retain_params or {})
    key = _canonical(name)
    if key in WEIGHT_EDIT_METHODS:
        return _build_weight_edit(key, forget_params, retain_params, forget_weight, retain_weight, recipe,
                                  benchmark, forget_split)
    forget_name, reg_name = parse_method_name(name)
    if forget_name in RENAMED and forget_name not in _told:
        _told.add(forget_name)  # once per process: a run builds its method more than once
        logging.getLogger("unlearn").warning("note: %s", RENAMED[forget_name])
    resolved = resolve_recipe(recipe, benchmark, forget_name, reg_name, forget_split)
    variant = resolved.variant
    forget_cls, reg_cls = FORGET_OBJECTIVES[forget_name], REGULARIZERS[reg_name]
    forget = forget_cls(make_params(forget_cls, {**(variant.forget if variant else {}), **forget_params}))
    regularizer = reg_cls(make_params(reg_cls, {**(variant.retain if variant else {}), **retain_params}))
    forget.check_pairing(regularizer)
    regularizer.check_pairing(forget)
    if forget_weight is None:
        forget_weight = variant.forget_weight if variant and variant.forget_weight is not None else 1.0
    if retain_weight is None:
        retain_weight = variant.retain_weight if variant and variant.retain_weight is not None else 1.0
    canonical = forget_name if reg_name == "none" else f"{forget_name}+{reg_name}"
    forget_weight = _check_weight("forget_weight", forget_weight)
    retain_weight = _check_weight("retain_weight", retain_weight)
    for objective in (forget, regularizer):
        objective.check_weights(forget_weight, retain_weight)
    return LossMethod(canonical, forget, regularizer, forget_weight, retain_weight, resolved)


def register_alias(alias: str, method: str, origin: str = "") -> None:
    """``method=ALIAS`` means ``method=METHOD`` (e.g. a plugin's ``pdu`` → ``lmf+dual``). An alias may not shadow
    another alias, a forget objective or a weight-edit method."""
    key, target = alias.strip().lower(), method.strip().lower()
    if not key or "+" in key:
        raise ConfigError(f"method alias {alias!r}: a name without '+'")
    taken = (f"the alias of {ALIASES[key]}" if key in ALIASES else "a forget objective" if key in FORGET_OBJECTIVES
             else "a weight-edit method" if key in WEIGHT_EDIT_METHODS else "")
    if taken and ALIASES.get(key) != target:
        raise ConfigError(f"method alias {key!r}{f' ({origin})' if origin else ''} is taken: it is {taken}")
    ALIASES[key] = target


def _build_weight_edit(key: str, forget_params: dict[str, Any], retain_params: dict[str, Any],
                       forget_weight: float | None, retain_weight: float | None, recipe: str, benchmark: str,
                       forget_split: str | None) -> WeightEditMethod:
    cls = WEIGHT_EDIT_METHODS[key]
    given = [k for k, v in (("retain", retain_params), ("method.forget_weight", forget_weight),
                            ("method.retain_weight", retain_weight)) if v]
    if given:
        raise ConfigError(f"method {key} is a weight-edit method: {', '.join(given)} do(es) not apply; its "
                          f"parameters go in the forget section (forget.alpha=…)")
    resolved = resolve_recipe(recipe, benchmark, key, "none", forget_split)
    variant = resolved.variant
    return cls(make_params(cls, {**(variant.forget if variant else {}), **forget_params}), resolved)


def describe_registry() -> str:
    """Human-readable list of objectives, regularizers, weight-edit methods and recipes (``unlearn methods``)."""
    def entry(registry: Any, n: str, c: Any) -> str:
        params = describe_params(c)
        origin = registry.origin(n)
        plugin = "" if origin.startswith("unlearn.") else f" [plugin: {origin}]"
        return f"  {n:12s} {c.summary}{plugin}" + (f"\n  {'':12s} parameters: {params}" if params else "")

    lines = ["Forget objectives (loss methods are FORGET+REGULARIZER; parameters in the forget section):"]
    lines += [entry(FORGET_OBJECTIVES, n, c) for n, c in FORGET_OBJECTIVES.items()]
    lines.append("Regularizers (parameters in the retain section):")
    lines += [entry(REGULARIZERS, n, c) for n, c in REGULARIZERS.items()]
    lines.append("Weight-edit methods (parameters in the forget section):")
    lines += [entry(WEIGHT_EDIT_METHODS, n, c) for n, c in WEIGHT_EDIT_METHODS.items()]
    lines.append("Recipes (method.recipe=auto picks the default variant for the run's task and forget split):")
    lines.append(describe_recipes())
    return "\n".join(lines)

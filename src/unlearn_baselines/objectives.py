"""The baselines' forget objectives and PDU's dual regularizer, registered through :mod:`unlearn.extend`
(docs/methods.md). Each objective composes with every regularizer (``wga+gd``, ``satimp+kl``, ``undial+gd``,
``ceu``, ``lmf+dual`` = ``pdu``); the values the papers and OpenUnlearning use are recipes
(:mod:`unlearn.config.recipes`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearn.extend import (
    IGNORE_INDEX,
    ConfigError,
    ForgetObjective,
    GeneratedAnswers,
    Measure,
    Need,
    Regularizer,
    StepInputs,
    forget_losses,
    param,
    register_forget_objective,
    register_method_alias,
    register_regularizer,
    retain_losses,
)
from unlearn_baselines import losses as L


def _mask(step: StepInputs, part: str) -> torch.Tensor:
    return step.parts[part].batch["labels"][:, 1:] != IGNORE_INDEX


@register_forget_objective
class WGA(ForgetObjective):
    name = "wga"
    summary = ("token-weighted gradient ascent, w_t = p_t^β detached (Wang et al., 2025; OpenUnlearning's WGA). "
               "Before 0.2 `wga` named SimNPO's length-weighted W-GradDiff, now `lwga`")

    @dataclass
    class Params:
        beta: float = param(1.0, "β of the weights p_t^β (the paper's and OpenUnlearning's 1; 0 is GA)", ge=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", token_logps=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        logps = step.parts["forget"].token_logps
        return L.weighted_ascent_loss(logps, _mask(step, "forget"), L.wga_weights(logps, self.params.beta))


@register_forget_objective
class SatImp(ForgetObjective):
    name = "satimp"
    summary = "gradient ascent weighted by saturation and importance, w_t = p_t^β1 (1 − p_t)^β2 detached (SatImp §5)"

    @dataclass
    class Params:
        beta1: float = param(5.0, "β1, the saturation exponent (SatImp's 5)", ge=0)
        beta2: float = param(1.0, "β2, the importance exponent (SatImp's 1)", ge=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", token_logps=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        logps = step.parts["forget"].token_logps
        weights = L.satimp_weights(logps, self.params.beta1, self.params.beta2)
        return L.weighted_ascent_loss(logps, _mask(step, "forget"), weights)


@register_forget_objective
class CEU(ForgetObjective):
    name = "ceu"
    summary = "cross-entropy towards the model's own distribution without the true token, detached (CE-U)"

    @dataclass
    class Params:
        skip_first: int = param(1, "answer tokens left out at the start of each answer (CE-U's training footnote, "
                                   "OpenUnlearning's ignore_first_n_answer_tokens)", ge=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", logits=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        part = step.parts["forget"]
        return L.ceu_loss(part.logits, part.batch["labels"], self.params.skip_first)


@register_forget_objective
class UNDIAL(ForgetObjective):
    name = "undial"
    summary = ("self-distillation towards the original model's logits with the true token lowered by β (UNDIAL); "
               "the teacher is the frozen start (LoRA: the adapters off, no copy)")

    @dataclass
    class Params:
        beta: float = param(10.0, "β, how far the true token's logit is lowered (OpenUnlearning's UNDIAL config: "
                                  "10)", gt=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", logits=True, reference_outputs=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        part = step.parts["forget"]
        return L.undial_loss(part.logits, step.reference["forget"].logits, part.batch["labels"], self.params.beta)


# ---------------------------------------------------------------------------------------------- PDU
@register_forget_objective
class LogitMarginFlattening(ForgetObjective):
    name = "lmf"
    summary = ("logit-margin flattening: (max logit − mean logit)² per answer token, towards a uniform next-token "
               "distribution (PDU's forget loss; method=pdu is lmf+dual)")

    @dataclass
    class Params:
        positions: str = param("answer", "`answer`: the paper's mean per answer over its tokens, then over answers; "
                                         "`all`: OpenUnlearning's one mean over every position of the padded batch",
                               choices=L.LMF_POSITIONS)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", logits=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        part = step.parts["forget"]
        return L.logit_margin_flattening_loss(part.logits, part.batch["labels"], self.params.positions)


DUAL_UPDATES = ("step", "epoch")


@register_regularizer
class DualRetain(Regularizer):
    """The retain loss as a constraint M(retain) ≤ ε, enforced by a dual variable λ (PDU, arXiv 2506.05314): the
    primal step minimises γ·L_forget + λ·(M(retain) − ε), then λ ← max(0, λ + η·(M(retain) − ε)). λ is state across
    steps: logged per step (``dual`` in the train log, the value the step's loss used), stored in every checkpoint and
    restored on --resume."""

    name = "dual"
    summary = ("the retain NLL as a constraint M(retain) ≤ ε with a dual variable λ by projected ascent: "
               "λ·(M(retain) − ε) (PDU)")

    @dataclass
    class Params:
        epsilon: float = param(0.0, "ε, the bound on the retain NLL; required (OpenUnlearning's TOFU value 0.3; the "
                                    "paper suggests (1 + α) × the start model's retain loss)", gt=0)
        dual_step: float = param(1.0, "η, the dual step size (OpenUnlearning's default 1; its TOFU run 5)", gt=0)
        dual_init: float = param(1.0, "λ₀, the dual variable at the start (OpenUnlearning's α; its TOFU run 100)",
                                 ge=0)
        dual_update: str = param("step", "`step`: after every optimizer step, with the step's mean retain NLL; "
                                         "`epoch`: after every epoch, with the mean retain NLL of every item",
                                 choices=DUAL_UPDATES)
        dual_warmup_epochs: int = param(0, "epochs that hold λ at λ₀ before the updates begin (the paper's warm "
                                           "start; OpenUnlearning's dual_warmup_epochs)", ge=0)

    def __init__(self, params: Params):
        super().__init__(params)
        if params.epsilon <= 0:
            raise ConfigError("retain.epsilon is required by the dual regularizer (PDU): the bound ε > 0 on the retain "
                              "NLL (OpenUnlearning's TOFU value 0.3; the paper suggests (1 + α) × the start model's "
                              "retain loss)")
        self.dual = float(params.dual_init)

    def check_weights(self, forget_weight: float, retain_weight: float) -> None:
        if retain_weight != 1.0:
            raise ConfigError(f"method.retain_weight={retain_weight:g}: the dual regularizer's weight is its dual "
                              "variable λ (retain.dual_init sets where it starts); leave method.retain_weight at 1")

    def needs(self) -> tuple[Need, ...]:
        return (Need("retain"),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        nll = retain_losses.gd_loss(step.parts["retain"].stats)
        self.record(retain_nll=nll)
        return self.dual * (nll - self.params.epsilon)

    def state_dict(self) -> dict[str, float]:
        return {"dual": self.dual}

    def load_state_dict(self, state) -> None:
        self.dual = float(state["dual"])

    def _updating(self, epoch: int, mode: str) -> bool:
        return self.params.dual_update == mode and epoch >= self.params.dual_warmup_epochs

    def after_step(self, logs, epoch: int) -> dict[str, float]:
        used = self.dual
        if self._updating(epoch, "step"):
            self.dual = L.dual_ascent(used, logs["retain_nll"] - self.params.epsilon, self.params.dual_step)
        return {"dual": used}

    def after_epoch(self, epoch: int, measure: Measure) -> dict[str, float]:
        # OpenUnlearning's epoch update happens once epoch + 1 ≥ its warm-up epochs: the warm-up's last epoch updates
        if self.params.dual_update != "epoch" or epoch + 1 < self.params.dual_warmup_epochs:
            return {"dual": self.dual}
        retain = measure(lambda step: retain_losses.gd_loss(step.parts["retain"].stats))
        self.dual = L.dual_ascent(self.dual, retain - self.params.epsilon, self.params.dual_step)
        return {"dual": self.dual, "dual_retain_nll": retain}


register_method_alias("pdu", "lmf+dual")


# ---------------------------------------------------------------------------------------------- AltPO
ALTPO_INSTRUCTION = ("Question: {question}\nAnswer: {answer}\nWrite a different answer to this question that "
                     "keeps its form but changes every fact the answer gives, so that it is plausible and wrong.")
"""Our wording of AltPO's request for an alternative (the paper's prompts are model-specific; docs/formulas.md#altpo
says how OpenUnlearning's differ)."""


@register_forget_objective
class AltPO(ForgetObjective):
    name = "altpo"
    summary = ("alternate preference optimization: DPO preferring answers the starting model wrote with changed "
               "facts over the forget answer (AltPO; the alternatives are generated once and kept in the run)")

    @dataclass
    class Params:
        beta: float = param(0.1, "inverse temperature β of the DPO term", gt=0)
        alternatives: int = param(1, "alternative answers per forget question (more than 1 needs "
                                     "decoding=sample; every item is then trained once per alternative)", ge=1)
        max_new_tokens: int = param(128, "the generation budget of each alternative, in tokens", gt=0)
        decoding: str = param("greedy", "`greedy` or `sample` (seeded by train.seed)", choices=("greedy", "sample"))
        temperature: float = param(1.0, "sampling temperature (decoding=sample)", gt=0)
        top_p: float = param(1.0, "nucleus sampling's p (decoding=sample)", gt=0)
        instruction: str = param(ALTPO_INSTRUCTION, "what the starting model is asked, with {question} and {answer}")

    def __init__(self, params: Params):
        super().__init__(params)
        if params.alternatives > 1 and params.decoding != "sample":
            raise ConfigError(f"forget.alternatives={params.alternatives} (altpo) needs forget.decoding=sample: "
                              "greedy decoding writes the same alternative each time")
        if params.top_p > 1:
            raise ConfigError(f"forget.top_p (altpo) must be ≤ 1, got {params.top_p:g}")
        try:
            params.instruction.format(question="q", answer="a")
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(f"forget.instruction (altpo) may name only {{question}} and {{answer}}: "
                              f"{err!r}") from None

    def needs(self) -> tuple[Need, ...]:
        return Need("forget", reference_logp=True), Need("forget_alt", reference_logp=True)

    def generated_answers(self) -> GeneratedAnswers:
        p = self.params
        return GeneratedAnswers("forget_alt", p.instruction, p.max_new_tokens, p.alternatives,
                                do_sample=p.decoding == "sample", temperature=p.temperature, top_p=p.top_p,
                                owner="forget")

    def loss(self, step: StepInputs) -> torch.Tensor:
        return forget_losses.dpo_loss(step.parts["forget_alt"].stats, step.reference["forget_alt"].logp,
                                      step.parts["forget"].stats, step.reference["forget"].logp, self.params.beta)

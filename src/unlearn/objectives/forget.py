"""Forget objectives (docs/formulas.md#method). Each is a pure function of per-sample statistics or logits.

Sign convention: every function returns a loss to MINIMISE. Forget objectives push the model away from
the forget answers (GA, NPO, SimNPO, W-GradDiff, ME) or towards a refusal (IDK, DPO).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from unlearn.objectives.sequence import SequenceStats, upcast


def ga_loss(forget: SequenceStats) -> torch.Tensor:
    """Gradient ascent: −M(forget) (closer-look eq. 1)."""
    return -forget.token_mean()


def npo_loss(forget: SequenceStats, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO: (2/β)·mean_b[−log σ(−β·(log π_θ(y|x) − log π_ref(y|x)))] (SimNPO eq. 3; docs/formulas.md#npo).

    Its gradient is w_θ·∇log π_θ with w_θ = 2π_θ^β/(π_θ^β + π_ref^β) (SimNPO eq. 4).
    """
    log_ratio = forget.logp - ref_logp
    return (2.0 / beta) * (-F.logsigmoid(-beta * log_ratio)).mean()


def simnpo_loss(forget: SequenceStats, beta: float, gamma: float = 0.0) -> torch.Tensor:
    """SimNPO, paper form: (2/β)·mean_b[−log σ(−(β/|y|)·log π_θ(y|x) − γ)] (SimNPO eq. 5; docs/formulas.md#simnpo).

    Gradient w'_θ·∇log π_θ with w'_θ = 2π_θ^{β/|y|}/(1 + π_θ^{β/|y|})·(1/|y|) at γ = 0 (SimNPO eq. 6).
    The reference code's margin is γ_code = γ/β.
    """
    margin = -(beta / forget.n_tokens) * forget.logp - gamma
    return (2.0 / beta) * (-F.logsigmoid(margin)).mean()


def weighted_ga_loss(forget: SequenceStats) -> torch.Tensor:
    """W-GradDiff's forget term, SimNPO's β→0 limit: −mean_b[S/|y|] (docs/formulas.md#lwga)."""
    return -forget.mean_nll.mean()


def idk_loss(forget_idk: SequenceStats) -> torch.Tensor:
    """IDK fine-tune, closer-look form: M(forget question + IDK answer) (docs/formulas.md#idk)."""
    return forget_idk.token_mean()


def idk_pooled_loss(forget_idk: SequenceStats, retain: SequenceStats) -> torch.Tensor:
    """TOFU's original IDK loss: one token mean over the IDK-answered forget samples and their retain samples
    together, (ΣS_idk + ΣS_retain)/(Σ|y|_idk + Σ|y|_retain) (docs/formulas.md#idk)."""
    return (forget_idk.nll_sum.sum() + retain.nll_sum.sum()) / (forget_idk.n_tokens.sum() + retain.n_tokens.sum())


def dpo_loss(
    forget_idk: SequenceStats,
    ref_logp_idk: torch.Tensor,
    forget: SequenceStats,
    ref_logp_forget: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """DPO with the refusal preferred over the forget answer (docs/formulas.md#dpo):

    (2/β)·mean_b[−log σ(β·((log π_θ(y_idk) − log π_ref(y_idk)) − (log π_θ(y_f) − log π_ref(y_f))))].
    """
    margin = (forget_idk.logp - ref_logp_idk) - (forget.logp - ref_logp_forget)
    return (2.0 / beta) * (-F.logsigmoid(beta * margin)).mean()


ME_DIRECTIONS = ("model_to_uniform", "uniform_to_model")


def me_loss(logits: torch.Tensor, mask: torch.Tensor, direction: str = "model_to_uniform") -> torch.Tensor:
    """Maximum entropy (closer-look eq. 6): token mean over ``mask`` of KL to the uniform distribution.

    ``model_to_uniform``: KL(P_t ‖ U_V) = log V − H(P_t) (the paper's direction, our default).
    ``uniform_to_model``: KL(U_V ‖ P_t) = −log V − (1/V)·Σ_v log P_t(v) (the reference code's direction).
    ``logits`` [B, T, V] are the predictions at the positions selected by ``mask`` [B, T].
    """
    log_probs = F.log_softmax(upcast(logits), dim=-1)
    vocab = log_probs.size(-1)
    if direction == "model_to_uniform":
        kl = math.log(vocab) + (log_probs.exp() * log_probs).sum(-1)
    elif direction == "uniform_to_model":
        kl = -math.log(vocab) - log_probs.mean(-1)
    else:
        raise ValueError(f"unknown ME direction {direction!r}; choose one of {ME_DIRECTIONS}")
    mask = mask.to(kl.dtype)
    return (kl * mask).sum() / mask.sum().clamp_min(1.0)


def rmu_forget_loss(hidden: torch.Tensor, control: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RMU's forget term (Li et al., 2024, WMDP §5): the mean squared error between the layer-ℓ activations of the
    forget tokens and the control vector c·û, i.e. Σ_{b,t: mask} ‖h_t − c·û‖² / (d · #tokens) (docs/formulas.md#rmu).

    ``hidden`` [B, T, d], ``control`` [d], ``mask`` [B, T] (1 = a real token).
    """
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (((hidden - control) ** 2) * m).sum() / (m.sum() * hidden.shape[-1])

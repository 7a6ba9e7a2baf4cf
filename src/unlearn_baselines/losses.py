"""Token-level forget losses of the field's other baselines (docs/formulas.md#token-weighted). Every function
returns a loss to MINIMISE, as :mod:`unlearn.objectives.forget` does.

Shapes: ``token_logps`` [B, T−1] is log p_θ(y_t | y_<t, x) of each label token (0 where there is none), ``mask``
[B, T−1] the label positions; ``logits`` [B, T, V] the logits of a forward pass over ``labels`` [B, T] (−100 off
the answer). Means are token means over every label position of the micro-batch, M(batch) as for GA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unlearn.extend import IGNORE_INDEX, upcast


def token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ values·mask / Σ mask over the micro-batch."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum()


def wga_weights(token_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """WGA's token weights w_t = p_t^β, detached (Wang et al., 2025, arXiv 2502.19301)."""
    return torch.exp(beta * token_logps.detach())


def satimp_weights(token_logps: torch.Tensor, beta1: float, beta2: float) -> torch.Tensor:
    """SatImp's token weights w_t = p_t^β1 · (1 − p_t)^β2, detached (arXiv 2505.11953 §5): β1 weighs
    saturation (tokens already likely), β2 importance (tokens not yet learnt)."""
    p = torch.exp(token_logps.detach())
    return p.pow(beta1) * (1.0 - p).pow(beta2)


def weighted_ascent_loss(token_logps: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted gradient ascent: −M_w = token mean of w_t · log p_t (minimised: each label token's NLL ascended
    with weight w_t). With w ≡ 1 it is GA, −M(forget)."""
    return token_mean(weights * token_logps, mask)


def answer_positions(labels: torch.Tensor, skip_first: int = 0) -> torch.Tensor:
    """[B, T−1] the positions that predict a label, without each sample's first ``skip_first`` label tokens."""
    target = labels[:, 1:]
    valid = target != IGNORE_INDEX
    return valid & (valid.cumsum(dim=1) > skip_first)


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Mean over rows of −Σ_v q_v log softmax(z)_v ([N, V] each); 0 · log p where q_v = 0."""
    log_p = F.log_softmax(upcast(logits), dim=-1)
    return -(target_probs * log_p).sum(dim=-1).mean()


def ceu_loss(logits: torch.Tensor, labels: torch.Tensor, skip_first: int = 1) -> torch.Tensor:
    """CE-U (arXiv 2503.01224): cross-entropy from the model's own distribution with the true token removed,
    q = softmax(z with z_y = −∞), detached, to the model's prediction, at every answer position but each sample's
    first ``skip_first`` (the paper's training footnote; OpenUnlearning's ``ignore_first_n_answer_tokens`` = 1).
    Its gradient with respect to the logits is softmax(z) − q per position: it lowers the true token and moves its
    mass to the others in proportion."""
    positions = answer_positions(labels, skip_first)
    pred = logits[:, :-1][positions]
    if pred.shape[0] == 0:  # every answer is within its first skip_first tokens: nothing to unlearn here
        return logits.sum() * 0.0
    target = upcast(pred.detach()).clone()
    target.scatter_(-1, labels[:, 1:][positions].unsqueeze(-1), float("-inf"))
    return soft_cross_entropy(pred, F.softmax(target, dim=-1))


def undial_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """UNDIAL (Dong et al., arXiv 2402.10052): self-distillation towards the frozen original model's
    distribution with the true token's logit lowered by β, q = softmax(z_teacher − β·onehot(y)), over the answer
    positions only (OpenUnlearning's version also averages prompt and padding positions, where its one-hot lands
    on vocabulary entry V − 100; docs/formulas.md#undial)."""
    positions = answer_positions(labels)
    pred = logits[:, :-1][positions]
    teacher = upcast(teacher_logits[:, :-1][positions].detach()).clone()
    ids = labels[:, 1:][positions].unsqueeze(-1)
    teacher.scatter_(-1, ids, teacher.gather(-1, ids) - beta)
    return soft_cross_entropy(pred, F.softmax(teacher, dim=-1))


LMF_POSITIONS = ("answer", "all")


def logit_margin_flattening_loss(logits: torch.Tensor, labels: torch.Tensor, positions: str = "answer") -> torch.Tensor:
    """PDU's forget loss, logit-margin flattening (Entesari et al., 2025, arXiv 2506.05314):

        L_LM = E_(x,y) [ (1/|y|) Σ_t (max_k z_t,k − (1/V) Σ_k z_t,k)² ]

    with z_t the logits that predict answer token y_t: zero exactly when every logit of a position is equal, so the
    next-token distribution is uniform; softmax-free, and its gradient does not vanish near the minimum as an
    entropy's does. ``positions="answer"`` is the paper's (answer tokens, a mean per answer, then over answers);
    ``"all"`` is OpenUnlearning's PDU trainer (one mean over every position of the padded batch: prompt, answer,
    padding and the last position, which predicts nothing)."""
    z = upcast(logits)
    margin = (z.max(dim=-1).values - z.mean(dim=-1)).pow(2)  # [B, T]
    if positions == "all":
        return margin.mean()
    mask = (labels[:, 1:] != IGNORE_INDEX).to(margin.dtype)
    per_answer = (margin[:, :-1] * mask).sum(dim=1) / mask.sum(dim=1)
    return per_answer.mean()


def dual_ascent(dual: float, constraint: float, step_size: float) -> float:
    """Projected dual ascent, λ ← max(0, λ + η·g) with g = L_retain − ε (PDU, arXiv 2506.05314): λ grows while the
    retain loss exceeds its bound and shrinks towards 0 once it holds."""
    return max(0.0, dual + step_size * constraint)

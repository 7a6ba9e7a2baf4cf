"""Every loss against an independent hand computation with explicit loops (SPEC §1–2), and the
gradient-weight identities of SimNPO eq. (4) and (6) checked with autograd."""

from __future__ import annotations

import math

import pytest
import torch

from unlearn.objectives import forget as F
from unlearn.objectives import retain as R
from unlearn.objectives.sequence import SequenceStats, sequence_stats

B, T, V = 3, 6, 7


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _log_softmax_row(row: list[float]) -> list[float]:
    m = max(row)
    z = math.log(sum(math.exp(v - m) for v in row)) + m
    return [v - z for v in row]


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, T, V, generator=g, dtype=torch.float64)
    labels = torch.randint(0, V, (B, T), generator=g)
    # prompt masked at the start, padding at the end, different answer lengths per row
    labels[0, :2] = -100
    labels[1, :3] = -100
    labels[1, 5:] = -100
    labels[2, :1] = -100
    attention = torch.ones(B, T, dtype=torch.long)
    attention[1, 5:] = 0
    return logits, labels, attention


def _hand_stats(logits, labels):
    sums, counts = [], []
    for b in range(logits.shape[0]):
        s, n = 0.0, 0
        for t in range(logits.shape[1] - 1):
            y = int(labels[b, t + 1])
            if y == -100:
                continue
            s -= _log_softmax_row(logits[b, t].tolist())[y]
            n += 1
        sums.append(s)
        counts.append(n)
    return sums, counts


def test_sequence_stats_match_loops(batch):
    logits, labels, _ = batch
    stats = sequence_stats(logits, labels)
    sums, counts = _hand_stats(logits, labels)
    assert stats.n_tokens.tolist() == counts
    assert torch.allclose(stats.nll_sum, torch.tensor(sums, dtype=torch.float64), atol=1e-10)
    assert math.isclose(float(stats.token_mean()), sum(sums) / sum(counts), rel_tol=1e-10)


def test_sequence_stats_reject_sample_without_labels(batch):
    logits, labels, _ = batch
    labels = labels.clone()
    labels[0] = -100
    with pytest.raises(ValueError, match="no label positions"):
        sequence_stats(logits, labels)


def _stats(sums, counts):
    return SequenceStats(torch.tensor(sums, dtype=torch.float64), torch.tensor(counts, dtype=torch.float64))


SUMS, COUNTS = [2.0, 7.5, 0.3], [4, 10, 2]
REF = [-1.5, -9.0, -0.1]


def test_ga_and_idk_are_token_means():
    s = _stats(SUMS, COUNTS)
    assert math.isclose(float(F.ga_loss(s)), -sum(SUMS) / sum(COUNTS))
    assert math.isclose(float(F.idk_loss(s)), sum(SUMS) / sum(COUNTS))


def test_weighted_ga_is_length_normalised():
    expected = -sum(s / n for s, n in zip(SUMS, COUNTS, strict=True)) / len(SUMS)
    assert math.isclose(float(F.weighted_ga_loss(_stats(SUMS, COUNTS))), expected)


@pytest.mark.parametrize("beta", [0.1, 1.0, 2.5])
def test_npo_loss(beta):
    expected = 0.0
    for s, r in zip(SUMS, REF, strict=True):
        logp = -s
        expected += -math.log(_sigmoid(-beta * (logp - r)))
    expected *= (2 / beta) / len(SUMS)
    got = F.npo_loss(_stats(SUMS, COUNTS), torch.tensor(REF, dtype=torch.float64), beta)
    assert math.isclose(float(got), expected, rel_tol=1e-12)


@pytest.mark.parametrize(("beta", "gamma"), [(2.5, 0.0), (4.5, 0.0), (2.5, 1.0)])
def test_simnpo_loss_paper_form(beta, gamma):
    expected = 0.0
    for s, n in zip(SUMS, COUNTS, strict=True):
        logp = -s
        expected += -math.log(_sigmoid(-(beta / n) * logp - gamma))
    expected *= (2 / beta) / len(SUMS)
    got = F.simnpo_loss(_stats(SUMS, COUNTS), beta, gamma)
    assert math.isclose(float(got), expected, rel_tol=1e-12)


def test_dpo_loss():
    idk_sums, idk_counts, idk_ref = [1.0, 3.0, 0.5], [3, 4, 2], [-2.0, -2.5, -1.0]
    beta = 0.1
    expected = 0.0
    for s_i, r_i, s_f, r_f in zip(idk_sums, idk_ref, SUMS, REF, strict=True):
        margin = (-s_i - r_i) - (-s_f - r_f)
        expected += -math.log(_sigmoid(beta * margin))
    expected *= (2 / beta) / 3
    got = F.dpo_loss(_stats(idk_sums, idk_counts), torch.tensor(idk_ref, dtype=torch.float64),
                     _stats(SUMS, COUNTS), torch.tensor(REF, dtype=torch.float64), beta)
    assert math.isclose(float(got), expected, rel_tol=1e-12)


def test_ap_loss_uses_one_over_beta_and_no_reference():
    idk_sums = [1.0, 3.0, 0.5]
    beta = 0.1
    expected = 0.0
    for s_r, s_i in zip(SUMS, idk_sums, strict=True):
        expected += -math.log(_sigmoid(beta * ((-s_r) - (-s_i))))
    expected *= (1 / beta) / 3
    got = R.ap_loss(_stats(SUMS, COUNTS), _stats(idk_sums, [3, 4, 2]), beta)
    assert math.isclose(float(got), expected, rel_tol=1e-12)


def test_gd_is_token_mean():
    assert math.isclose(float(R.gd_loss(_stats(SUMS, COUNTS))), sum(SUMS) / sum(COUNTS))


@pytest.mark.parametrize("direction", ["model_to_uniform", "uniform_to_model"])
def test_me_loss(batch, direction):
    logits, _, attention = batch
    mask = attention.clone()
    mask[0, 0] = 0
    total, n = 0.0, 0
    for b in range(B):
        for t in range(T):
            if not mask[b, t]:
                continue
            logp = _log_softmax_row(logits[b, t].tolist())
            if direction == "model_to_uniform":
                kl = sum(math.exp(lp) * (lp - math.log(1 / V)) for lp in logp)
            else:
                kl = sum((1 / V) * (math.log(1 / V) - lp) for lp in logp)
            total += kl
            n += 1
    got = F.me_loss(logits, mask, direction)
    assert math.isclose(float(got), total / n, rel_tol=1e-9)


def test_me_loss_is_zero_for_uniform_predictions():
    logits = torch.zeros(2, 3, V)
    assert float(F.me_loss(logits, torch.ones(2, 3))) == pytest.approx(0.0, abs=1e-6)
    assert float(F.me_loss(torch.randn(2, 3, V), torch.ones(2, 3))) > 0.01


def test_me_rejects_unknown_direction():
    with pytest.raises(ValueError, match="unknown ME direction"):
        F.me_loss(torch.zeros(1, 1, V), torch.ones(1, 1), "sideways")


def test_kl_loss_reference_to_model(batch):
    logits, _, attention = batch
    ref = torch.randn(B, T, V, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    total, n = 0.0, 0
    for b in range(B):
        for t in range(T):
            if not attention[b, t]:
                continue
            lp = _log_softmax_row(logits[b, t].tolist())
            lr = _log_softmax_row(ref[b, t].tolist())
            total += sum(math.exp(r) * (r - p) for r, p in zip(lr, lp, strict=True))
            n += 1
    got = R.kl_loss(logits, ref, attention)
    assert math.isclose(float(got), total / n, rel_tol=1e-9)
    assert float(R.kl_loss(logits, logits, attention)) == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ gradient-weight identities (autograd)
def _per_sample_logp_and_grads(theta, x, labels):
    """logits = x @ theta; returns log π per sample (tensor) and ∇_θ log π_b for each b (list)."""
    logits = x @ theta
    stats = sequence_stats(logits, labels)
    grads = []
    for b in range(labels.shape[0]):
        (g,) = torch.autograd.grad(stats.logp[b], theta, retain_graph=True)
        grads.append(g)
    return stats, grads


@pytest.fixture
def linear_model():
    g = torch.Generator().manual_seed(1)
    theta = torch.randn(5, V, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(B, T, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[:, :2] = -100
    labels[2, 4:] = -100
    return theta, x, labels


def test_npo_gradient_equals_weighted_ga_gradient(linear_model):
    """SimNPO eq. (4): ∇L_NPO = mean_b[w_θ ∇log π_θ], w_θ = 2π_θ^β / (π_θ^β + π_ref^β)."""
    theta, x, labels = linear_model
    beta = 0.7
    stats, grads = _per_sample_logp_and_grads(theta, x, labels)
    ref = stats.logp.detach() + torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    (got,) = torch.autograd.grad(F.npo_loss(stats, ref, beta), theta, retain_graph=True)
    expected = torch.zeros_like(theta)
    for b in range(B):
        pi, pi_ref = math.exp(float(stats.logp[b])), math.exp(float(ref[b]))
        w = 2 * pi**beta / (pi**beta + pi_ref**beta)
        expected += w * grads[b] / B
    assert torch.allclose(got, expected, atol=1e-10)


@pytest.mark.parametrize("gamma", [0.0, 0.8])
def test_simnpo_gradient_equals_length_normalised_weight(linear_model, gamma):
    """SimNPO eq. (6): ∇L = mean_b[w'_θ ∇log π_θ], w'_θ = 2σ((β/|y|) log π + γ) / |y|
    (= 2π^{β/|y|}/(1 + π^{β/|y|})·1/|y| at γ = 0)."""
    theta, x, labels = linear_model
    beta = 2.5
    stats, grads = _per_sample_logp_and_grads(theta, x, labels)
    (got,) = torch.autograd.grad(F.simnpo_loss(stats, beta, gamma), theta, retain_graph=True)
    expected = torch.zeros_like(theta)
    for b in range(B):
        n = float(stats.n_tokens[b])
        logp = float(stats.logp[b])
        if gamma == 0.0:
            p = math.exp(logp) ** (beta / n)
            w = 2 * p / (1 + p) / n
        else:
            w = 2 * _sigmoid(beta / n * logp + gamma) / n
        expected += w * grads[b] / B
    assert torch.allclose(got, expected, atol=1e-10)


def test_npo_tends_to_ga_direction_at_start(linear_model):
    """At θ = θ_ref every NPO weight is 1, so NPO's gradient is the sequence-level GA gradient."""
    theta, x, labels = linear_model
    stats, grads = _per_sample_logp_and_grads(theta, x, labels)
    (got,) = torch.autograd.grad(F.npo_loss(stats, stats.logp.detach(), 0.1), theta, retain_graph=True)
    expected = sum(grads) / B
    assert torch.allclose(got, expected, atol=1e-10)

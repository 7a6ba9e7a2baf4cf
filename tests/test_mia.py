"""Membership-inference attacks against hand computations on tiny examples, and the batched statistics against a
plain forward pass."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch

from tests.conftest import make_tiny
from unlearn.data.formatting import EncodedSample
from unlearn.evaluation import mia

LOGP = np.log(np.array([0.5, 0.1, 0.9, 0.2, 0.05]))


def _stats(logp=LOGP, mu=None, sigma=None):
    n = len(logp)
    return mia.TokenStats(np.asarray(logp), np.zeros(n) if mu is None else np.asarray(mu),
                          np.ones(n) if sigma is None else np.asarray(sigma))


def test_loss_zlib_and_min_k_by_hand():
    s = _stats()
    assert mia.loss_score(s) == pytest.approx(sum(math.log(p) for p in (0.5, 0.1, 0.9, 0.2, 0.05)) / 5)
    text = "the cat sat on the mat"
    # Carlini et al.'s ratio of the log-perplexity (the MEAN token NLL, not the sum) to the zlib entropy
    log_perplexity = -sum(math.log(p) for p in (0.5, 0.1, 0.9, 0.2, 0.05)) / 5
    assert mia.zlib_score(s, text) == pytest.approx(-log_perplexity / len(zlib.compress(text.encode())))
    # k = 40 % of 5 tokens = 2 lowest: p = 0.05 and 0.1
    assert mia.min_k_score(s, 0.4) == pytest.approx((math.log(0.05) + math.log(0.1)) / 2)
    # k = 20 % → 1 token; k·n is rounded down (0.3·5 = 1.5 → 1 token), at least one token
    assert mia.min_k_score(s, 0.2) == pytest.approx(math.log(0.05))
    assert mia.min_k_score(s, 0.3) == pytest.approx(math.log(0.05))
    assert mia.min_k_score(s, 0.01) == pytest.approx(math.log(0.05))


def test_min_k_plus_plus_normalises_by_the_vocabulary_statistics():
    mu, sigma = [-1.0, -2.0, -0.5, -1.5, -3.0], [0.5, 1.0, 0.25, 2.0, 1.0]
    z = [(math.log(p) - m) / s for p, m, s in zip((0.5, 0.1, 0.9, 0.2, 0.05), mu, sigma, strict=True)]
    s = _stats(mu=mu, sigma=sigma)
    assert mia.min_k_plus_plus_score(s, 0.4) == pytest.approx(sum(sorted(z)[:2]) / 2)


def test_reference_score_and_auc():
    s, ref = _stats(), _stats(np.log([0.4, 0.4, 0.4, 0.4, 0.4]))
    assert mia.reference_score(s, ref) == pytest.approx(LOGP.mean() - math.log(0.4))
    # members 3, 5; non-members 1, 3, 4: pairs (3>1)(3=3 → ½)(3<4)(5>1)(5>3)(5>4) = 4.5 of 6
    assert mia.auc([3, 5], [1, 3, 4]) == pytest.approx(4.5 / 6)
    assert mia.auc([10, 11], [1, 2]) == 1.0 and mia.auc([1, 2], [10, 11]) == 0.0
    fpr, tpr = mia.roc_curve([3, 5], [1, 3, 4])
    assert fpr.tolist() == [0, 0, 1 / 3, 2 / 3, 1] and tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert np.trapezoid(tpr, fpr) == pytest.approx(4.5 / 6)  # the curve's area is the AUC


def test_token_statistics_equal_a_plain_forward_pass(tokenizer):
    model = make_tiny(tokenizer, seed=4)
    samples = [EncodedSample.sequence(tokenizer(t)["input_ids"]) for t in
               ("Where was the author born?", "Lyon", "A much longer sentence about the author and the books.")]
    got = mia.token_statistics(model, samples, tokenizer.pad_token_id, batch_size=2, device=torch.device("cpu"))
    for sample, s in zip(samples, got, strict=True):
        ids = torch.tensor([sample.input_ids])
        with torch.no_grad():
            log_probs = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), -1)
        want = log_probs.gather(-1, ids[0, 1:, None]).squeeze(-1)
        assert s.logp == pytest.approx(want.numpy(), abs=1e-5)
        p = log_probs.exp()
        mean = (p * log_probs).sum(-1)
        std = ((p * (log_probs - mean[:, None]) ** 2).sum(-1)).sqrt()
        assert s.mu == pytest.approx(mean.numpy(), abs=1e-5) and s.sigma == pytest.approx(std.numpy(), abs=1e-5)
        assert s.n == len(sample.input_ids) - 1


def test_gradnorm_is_the_norm_of_the_per_sample_gradient(tokenizer):
    model = make_tiny(tokenizer, seed=4)
    samples = [EncodedSample.sequence(tokenizer(t)["input_ids"]) for t in ("Lyon is a city.", "Paris")]
    model.requires_grad_(False)  # a frozen model (e.g. evaluated after training): the attack takes every weight's
    scores = mia.gradnorm_scores(model, samples, tokenizer.pad_token_id, torch.device("cpu"))
    assert not any(p.requires_grad for p in model.parameters())  # and gives the flags back as they were
    assert all(p.grad is None for p in model.parameters())  # nothing accumulated into .grad
    model.requires_grad_(True)  # the hand computation below takes every parameter's gradient
    for sample, score in zip(samples, scores, strict=True):
        model.zero_grad()
        ids = torch.tensor([sample.input_ids])
        logits = model(input_ids=ids).logits[0, :-1]
        torch.nn.functional.cross_entropy(logits, ids[0, 1:]).backward()
        norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters() if p.grad is not None))
        assert score == pytest.approx(-norm, rel=1e-5)

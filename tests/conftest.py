"""Shared fixtures: a small generated benchmark, a tokenizer trained on it, tiny random Llama models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One worker per core (pytest -n): a second torch thread per worker would only contend for the same cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from unlearn.data.formatting import NAMED_TEMPLATES
from unlearn.models.loading import save_model
from unlearn.models.tiny import build_tiny_model, tiny_llama_config, train_tokenizer
from unlearn.tasks.tofu.embedded import generate_benchmark, training_texts

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

FIXTURES = Path(__file__).resolve().parent / "data"
"""A few rows of the real benchmarks (tests/data/README.md): the suite never needs the full copies."""
TOFU_DIR = FIXTURES / "tofu"


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory) -> Path:
    """20 fictitious authors × 4 questions: forget10 = 2 authors (8 rows), retain_perturbed = 2 authors."""
    return generate_benchmark(tmp_path_factory.mktemp("bench"), n_authors=20, questions_per_author=4, seed=0)


@pytest.fixture(scope="session")
def tokenizer(bench_dir):
    texts = training_texts(bench_dir)
    texts += [NAMED_TEMPLATES["qa"].format(question=t) for t in texts[:300]]
    return train_tokenizer(texts, vocab_size=400)


def make_tiny(tokenizer, seed: int = 0, hidden: int = 32, layers: int = 2):
    config = tiny_llama_config(len(tokenizer), hidden_size=hidden, num_layers=layers, num_heads=4,
                               intermediate_size=2 * hidden, max_position_embeddings=256, tokenizer=tokenizer)
    return build_tiny_model(config, seed=seed)


@pytest.fixture
def tiny_model(tokenizer):
    torch.manual_seed(0)
    return make_tiny(tokenizer)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A saved random tiny model + tokenizer (safetensors), loadable by path."""
    out = tmp_path_factory.mktemp("tiny_model")
    save_model(make_tiny(tokenizer, seed=1), tokenizer, out)
    return out


@pytest.fixture(scope="session")
def forget10_parts(bench_dir, tokenizer):
    """(formatter, the four batch parts of forget10 with seed-0 pairing), max length 128."""
    from unlearn.data.formatting import ChatFormatter
    from unlearn.data.idk import builtin_idk_templates
    from unlearn.data.pairing import pair_forget_items
    from unlearn.data.parts import QASource
    from unlearn.tasks.tofu.data import TofuData

    data = TofuData(bench_dir)
    forget, retain = data.forget_split("forget10"), data.retain_split("forget10")
    templates = builtin_idk_templates()
    pairing = pair_forget_items(len(forget), len(retain), len(templates), seed=0)
    fmt = ChatFormatter(tokenizer)
    parts = QASource(fmt, forget, retain, templates, pairing, max_length=128).part_data(
        ("forget", "forget_idk", "retain", "retain_idk"))
    return fmt, parts


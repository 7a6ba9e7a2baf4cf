"""Write a tiny Llama + byte-level BPE tokenizer as a GGUF file (F32), for testing the GGUF loading path.

Follows llama.cpp's conventions: q/k projection rows permuted for its rotary layout, tensors named
``blk.N.attn_q.weight`` etc., tokenizer as ``tokenizer.ggml.model = gpt2`` with tokens and merges.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, 2, dim, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_llama_gguf(model, tokenizer, path: str | Path) -> Path:
    cfg = model.config
    path = Path(path)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("unlearn-test-tiny-llama")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(float(getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(len(json.loads(tokenizer.backend_tokenizer.to_str())["model"]["vocab"]) + 1
                          if "<|endoftext|>" not in tokenizer.get_vocab() else cfg.vocab_size)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    tokens = [None] * len(vocab)
    for tok, idx in vocab.items():
        tokens[idx] = tok
    special = {t["id"] for t in spec["added_tokens"]}
    # transformers' GGUF byte-level converter uses GPT-2's "<|endoftext|>" as unk and appends it when
    # missing; ship it (as llama.cpp exports of GPT-2-style vocabularies do) with a zero output row.
    extra = 0
    if "<|endoftext|>" not in vocab:
        tokens.append("<|endoftext|>")
        special.add(len(tokens) - 1)
        extra = 1
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL
                            for i in range(len(tokens))])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(True)

    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        sd[key] = np.concatenate([sd[key], np.zeros((extra, sd[key].shape[1]), dtype=np.float32)])
    writer.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", sd["model.norm.weight"])
    writer.add_tensor("output.weight", sd["lm_head.weight"])
    names = {"self_attn.o_proj": "attn_output", "self_attn.v_proj": "attn_v", "mlp.gate_proj": "ffn_gate",
             "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
             "post_attention_layernorm": "ffn_norm"}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
        writer.add_tensor(f"blk.{i}.attn_q.weight", _permute(q, cfg.num_attention_heads))
        writer.add_tensor(f"blk.{i}.attn_k.weight", _permute(k, cfg.num_key_value_heads))
        for hf, gg in names.items():
            writer.add_tensor(f"blk.{i}.{gg}.weight", sd[f"{p}{hf}.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path

"""Chat formatting and label masking: prompt positions are -100, the answer is followed by exactly one EOS."""

from __future__ import annotations

import copy

import pytest
import torch

from unlearn.data.collate import pad_left, pad_right
from unlearn.data.formatting import IGNORE_INDEX, ChatFormatter, check_lengths
from unlearn.errors import ConfigError, DataError

Q, A = "Where was Kake Wentan born?", "Kake Wentan was born in Utrecht."


def _label_tokens(e):
    return [t for t in e.labels if t != IGNORE_INDEX]


def test_qa_template_masks_prompt_and_ends_with_one_eos(tokenizer):
    fmt = ChatFormatter(tokenizer)  # no chat template → "qa"
    assert fmt.template == "qa"
    assert fmt.prompt_text(Q) == f"Question: {Q}\nAnswer: "
    e = fmt.encode(Q, A)
    assert list(e.input_ids[: e.prompt_length]) == fmt.encode_prompts([Q])[0]
    assert all(t == IGNORE_INDEX for t in e.labels[: e.prompt_length])
    assert list(e.labels[e.prompt_length:]) == list(e.input_ids[e.prompt_length:])
    assert e.input_ids[-1] == tokenizer.eos_token_id
    assert list(e.input_ids).count(tokenizer.eos_token_id) == 1
    assert e.input_ids[0] == tokenizer.bos_token_id  # the tokenizer's own BOS convention
    assert tokenizer.decode(_label_tokens(e), skip_special_tokens=True).strip() == A
    assert e.n_label_tokens == len(_label_tokens(e))


def test_named_templates(tokenizer):
    assert ChatFormatter(tokenizer, "llama2").prompt_text("q?") == "[INST] q? [/INST]"
    chatml = "<|im_start|>user\nq?<|im_end|>\n<|im_start|>assistant\n"
    assert ChatFormatter(tokenizer, "chatml").prompt_text("q?") == chatml
    with pytest.raises(ConfigError, match="unknown chat template 'alpaca'"):
        ChatFormatter(tokenizer, "alpaca")
    with pytest.raises(ConfigError, match="has no chat template"):
        ChatFormatter(tokenizer, "chat_template")


def test_tokenizer_chat_template_is_used_when_present(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}assistant: {% endif %}")
    fmt = ChatFormatter(tok)
    assert fmt.template == "chat_template"
    assert fmt.prompt_text(Q) == f"<s>user: {Q}\nassistant: "
    e = fmt.encode(Q, A)
    assert list(e.input_ids).count(tok.bos_token_id) == 1  # the template's BOS only, none added on top
    assert _label_tokens(e)[-1] == tok.eos_token_id
    fmt_sys = ChatFormatter(tok, system_prompt="Be brief.")
    assert fmt_sys.prompt_text("q").startswith("<s>system: Be brief.\n<s>user: q")


def test_tokenizer_that_appends_eos_still_gets_exactly_one(tokenizer):
    from tokenizers import processors

    tok = copy.deepcopy(tokenizer)
    bos, eos = tok.bos_token, tok.eos_token
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, tok.bos_token_id), (eos, tok.eos_token_id)])
    e = ChatFormatter(tok).encode(Q, A)
    assert list(e.input_ids).count(tok.eos_token_id) == 1 and e.input_ids[-1] == tok.eos_token_id


def test_length_check_names_the_sample(tokenizer):
    fmt = ChatFormatter(tokenizer)
    encoded = fmt.encode_pairs([(Q, A), (Q, A * 10)])
    check_lengths(encoded, 1000, ["f.json:0 field 'answer'", "f.json:1 field 'answer'"])
    with pytest.raises(DataError, match=r"1 sample\(s\) exceed max_length=40 .*f\.json:1 field 'answer'"):
        check_lengths(encoded, 40, ["f.json:0 field 'answer'", "f.json:1 field 'answer'"])


def test_padding(tokenizer):
    fmt = ChatFormatter(tokenizer)
    short, long = fmt.encode_pairs([(Q, "Yes."), (Q, A)])
    batch = pad_right([short, long], pad_id=fmt.pad_id)
    n = len(short.input_ids)
    assert batch["input_ids"].shape == (2, len(long.input_ids))
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (len(long.input_ids) - n)
    assert (batch["labels"][0, n:] == IGNORE_INDEX).all()
    assert batch["input_ids"][0, :n].tolist() == list(short.input_ids)
    assert pad_right([short], fmt.pad_id, pad_to=50)["input_ids"].shape == (1, 50)
    left = pad_left([[5, 6], [7, 8, 9]], pad_id=0)
    assert left["input_ids"].tolist() == [[0, 5, 6], [7, 8, 9]]
    assert left["attention_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert left["input_ids"].dtype == torch.long

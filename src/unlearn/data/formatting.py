"""Chat formatting and label masking (docs/formulas.md#notation).

A training/eval sample is: prompt tokens (BOS and chat tags included) → answer tokens → exactly one EOS.
Labels are -100 on every prompt position (and on padding, see :mod:`unlearn.data.collate`), so losses and
likelihoods see the answer and its EOS only.

The prompt comes from the tokenizer's own chat template when it has one (``template="auto"``), otherwise from
a named template: ``llama2`` (``[INST] q [/INST]``, as TOFU), ``qa`` (``Question: q\\nAnswer: ``) or
``chatml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from unlearn.errors import ConfigError, DataError

IGNORE_INDEX = -100

NAMED_TEMPLATES: dict[str, str] = {
    "llama2": "[INST] {question} [/INST]",
    "qa": "Question: {question}\nAnswer: ",
    "chatml": "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n",
}
TEMPLATE_CHOICES = ("auto", "chat_template", *NAMED_TEMPLATES)


@dataclass(frozen=True)
class EncodedSample:
    """Token ids and labels of one sample. A QA sample is prompt + answer + EOS with the prompt masked; a token
    sequence (a Markov chain, a text chunk) has labels on every token (``prompt_length`` 0: the first token is
    given, every later one is predicted)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    prompt_length: int

    @classmethod
    def sequence(cls, ids: Sequence[int]) -> EncodedSample:
        """A token sequence whose every token is a label (the first is never predicted: nothing precedes it)."""
        ids = tuple(int(i) for i in ids)
        return cls(input_ids=ids, labels=ids, prompt_length=0)

    @property
    def n_label_tokens(self) -> int:
        """|y| (docs/formulas.md "Notation"): answer tokens + the EOS."""
        return len(self.input_ids) - self.prompt_length


class ChatFormatter:
    """Turns questions (and answers) into token ids exactly the same way for training, likelihood and generation."""

    def __init__(self, tokenizer, template: str = "auto", system_prompt: str | None = None):
        if template not in TEMPLATE_CHOICES:
            raise ConfigError(f"unknown chat template {template!r}; choose one of {', '.join(TEMPLATE_CHOICES)}")
        has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        if template == "auto":
            template = "chat_template" if has_chat_template else "qa"
        if template == "chat_template" and not has_chat_template:
            raise ConfigError("template 'chat_template' requested but the tokenizer has no chat template")
        if tokenizer.eos_token_id is None:
            raise ConfigError("the tokenizer has no EOS token; every answer must end with exactly one EOS label")
        self.tokenizer = tokenizer
        self.template = template
        self.system_prompt = system_prompt
        # Named templates let the tokenizer add its own special tokens (BOS for Llama-style tokenizers);
        # a rendered chat template already contains them as text.
        self._add_special = template != "chat_template"
        self.eos_id: int = tokenizer.eos_token_id
        self.pad_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id

    def prompt_text(self, question: str) -> str:
        if self.template == "chat_template":
            messages = [{"role": "user", "content": question}]
            if self.system_prompt is not None:
                messages.insert(0, {"role": "system", "content": self.system_prompt})
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return NAMED_TEMPLATES[self.template].format(question=question)

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        batch = self.tokenizer(list(texts), add_special_tokens=self._add_special)["input_ids"]
        # Some tokenizers append EOS themselves; we add exactly one ourselves.
        return [ids[:-1] if ids and ids[-1] == self.eos_id else list(ids) for ids in batch]

    def encode_prompts(self, questions: Sequence[str]) -> list[list[int]]:
        """Prompt token ids (what generation is conditioned on)."""
        return self._ids([self.prompt_text(q) for q in questions])

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[EncodedSample]:
        """Encode (question, answer) pairs in one batched tokenizer call per part."""
        if not pairs:
            return []
        prompts = [self.prompt_text(q) for q, _ in pairs]
        prompt_ids = self._ids(prompts)
        full_ids = self._ids([p + a for p, (_, a) in zip(prompts, pairs, strict=True)])
        out = []
        fallback: dict[int, list[int]] = {}
        for i, (p_ids, f_ids) in enumerate(zip(prompt_ids, full_ids, strict=True)):
            if f_ids[: len(p_ids)] != p_ids:  # the boundary merged tokens: tokenize the answer on its own
                fallback[i] = self.tokenizer(pairs[i][1], add_special_tokens=False)["input_ids"]
        for i, (p_ids, f_ids) in enumerate(zip(prompt_ids, full_ids, strict=True)):
            answer_ids = fallback[i] if i in fallback else f_ids[len(p_ids):]
            if not answer_ids:
                raise DataError(f"answer {pairs[i][1]!r} tokenizes to nothing")
            input_ids = (*p_ids, *answer_ids, self.eos_id)
            labels = (IGNORE_INDEX,) * len(p_ids) + (*answer_ids, self.eos_id)
            out.append(EncodedSample(input_ids=input_ids, labels=labels, prompt_length=len(p_ids)))
        return out

    def encode(self, question: str, answer: str) -> EncodedSample:
        return self.encode_pairs([(question, answer)])[0]


def check_lengths(encoded: Sequence[EncodedSample], max_length: int, what: Sequence[str],
                  question_what: Sequence[str] | None = None) -> None:
    """Raise before any compute if a sample is longer than ``max_length`` (never truncate silently).

    ``what[i]`` describes sample i (file:row and field) for the message; when the prompt alone leaves no room for an
    answer and its EOS, ``question_what[i]`` is blamed instead (the question is what is too long).
    """
    too_long = []
    for i, (e, w) in enumerate(zip(encoded, what, strict=True)):
        if len(e.input_ids) <= max_length:
            continue
        if question_what is not None and e.prompt_length + 2 > max_length:
            too_long.append((f"{question_what[i]} (the prompt alone)", e.prompt_length))
        else:
            too_long.append((w, len(e.input_ids)))
    if too_long:
        first, n = too_long[0]
        raise DataError(
            f"{len(too_long)} sample(s) exceed max_length={max_length} tokens; first: {first} has {n} tokens. "
            "Raise data.max_length or shorten the data."
        )

"""Raw-text corpora: reading them, and cutting them into training chunks (docs/formulas.md#text-chunks).

A corpus is a ``.txt`` file (one text), a ``.json`` list of texts (strings, or objects with a ``text`` field) or a
``.jsonl`` file of ``{"text": …}`` lines. For
training, a corpus is tokenized as ONE stream (its texts joined by a blank line) and cut into chunks of
``max_length`` tokens, each starting with the tokenizer's own start tokens (BOS for Llama-style tokenizers; none for
tokenizers that add none, such as SmolLM2's) and with a label on every token, as MUSE does. Two deliberate
differences from MUSE's code: the last chunk stays short instead of being filled up with tokens from the first chunk,
and a ``.json`` corpus is chunked as a stream too instead of one padded-or-cut chunk per text (MUSE's way loses the
text beyond ``max_length`` and trains on padding).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from unlearn.data.files import read_utf8
from unlearn.errors import DataError

SEPARATOR = "\n\n"


def read_texts(path: str | Path) -> list[str]:
    """The texts of a corpus file; a missing, empty or non-UTF-8 file, or a bad row, is a DataError naming it."""
    path = Path(path)
    text = read_utf8(path)
    if path.suffix == ".txt":
        texts = [text]
    elif path.suffix == ".jsonl":
        texts = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {i} is not valid JSON ({err.msg})") from None
            if not (isinstance(row, dict) and isinstance(row.get("text"), str)):
                raise DataError(f"{path}: line {i} must be an object with a 'text' string")
            texts.append(row["text"])
    else:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of texts, got {type(rows).__name__}")
        texts = []
        for i, row in enumerate(rows):
            if isinstance(row, dict) and isinstance(row.get("text"), str):
                row = row["text"]
            if not isinstance(row, str):
                raise DataError(f"{path}: row {i} must be a string or an object with a 'text' string")
            texts.append(row)
    if not any(t.strip() for t in texts):
        raise DataError(f"{path}: the corpus is empty")
    return texts


def chunk_stream(tokenizer, texts: Sequence[str], max_length: int) -> list[tuple[int, ...]]:
    """Token chunks of at most ``max_length`` tokens: BOS + the next ``max_length − 1`` tokens of the stream."""
    if max_length < 16:
        raise DataError(f"data.max_length must be at least 16 for text chunks, got {max_length}")
    ids = tokenizer(SEPARATOR.join(texts), add_special_tokens=False)["input_ids"]
    if not ids:
        raise DataError("the corpus tokenizes to nothing")
    head = start_tokens(tokenizer)
    step = max_length - len(head)
    return [(*head, *ids[i:i + step]) for i in range(0, len(ids), step)]


def chunk_texts(tokenizer, texts: Sequence[str], max_length: int, mode: str = "stream") -> list[tuple[int, ...]]:
    """``mode="stream"``: :func:`chunk_stream`. ``"per_text"``: each text its own stream, so every text starts a
    chunk (after the start tokens), as an evaluation prompt does."""
    if mode == "stream":
        return chunk_stream(tokenizer, texts, max_length)
    chunks = [c for text in texts if text.strip() for c in chunk_stream(tokenizer, [text], max_length)]
    if not chunks:
        raise DataError("the corpus tokenizes to nothing")
    return chunks


def start_tokens(tokenizer) -> tuple[int, ...]:
    """The special tokens the tokenizer puts before a text by default (``(BOS,)`` for Llama, ``()`` for GPT-2)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    cut = next((i for i in range(len(full)) if full[i:i + len(plain)] == plain), 0)
    return tuple(full[:cut])


def encode_text(tokenizer, text: str) -> tuple[int, ...]:
    """One text as model input: the tokenizer's start tokens and the text's tokens, nothing cut (MUSE scores
    texts whole)."""
    return start_tokens(tokenizer) + tuple(tokenizer(text, add_special_tokens=False)["input_ids"])

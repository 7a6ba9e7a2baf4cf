"""Pre-encoded batch parts for unlearning (and fine-tuning), aligned by item index.

Everything is tokenized once, up front, so bad lengths fail before any compute and the training step
only pads and stacks. ``parts["retain"][i]`` is the retain item paired with forget item ``i`` (SPEC §2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from unlearn.data.collate import pad_right
from unlearn.data.formatting import ChatFormatter, EncodedQA, check_lengths
from unlearn.data.pairing import Pairing
from unlearn.data.records import QARecord


@dataclass
class PartData:
    """Encoded samples per part; every list has one entry per item (forget item or training record)."""

    parts: dict[str, list[EncodedQA]]
    pad_id: int
    max_length: int

    def __len__(self) -> int:
        return len(next(iter(self.parts.values())))

    def batch(self, part: str, indices: Sequence[int], pad_to_max: bool = False) -> dict[str, torch.Tensor]:
        samples = [self.parts[part][i] for i in indices]
        return pad_right(samples, self.pad_id, self.max_length if pad_to_max else None)


def encode_checked(
    formatter: ChatFormatter,
    pairs: Sequence[tuple[str, str]],
    where: Sequence[str],
    max_length: int,
) -> list[EncodedQA]:
    encoded = formatter.encode_pairs(pairs)
    check_lengths(encoded, max_length, where)
    return encoded


def unlearning_parts(
    formatter: ChatFormatter,
    forget: Sequence[QARecord],
    retain: Sequence[QARecord],
    idk_templates: Sequence[str],
    pairing: Pairing,
    parts: Sequence[str],
    max_length: int,
) -> PartData:
    """Encode the parts a method needs, one entry per forget item."""
    out: dict[str, list[EncodedQA]] = {}
    for part in parts:
        if part == "forget":
            pairs = [(r.question, r.answer) for r in forget]
            where = [f"{r.source} field 'answer'" for r in forget]
        elif part == "forget_idk":
            pairs = [(r.question, idk_templates[k]) for r, k in zip(forget, pairing.idk_index, strict=True)]
            where = [f"{r.source} field 'question' + IDK template {k}" for r, k in
                     zip(forget, pairing.idk_index, strict=True)]
        elif part == "retain":
            paired = [retain[j] for j in pairing.retain_index]
            pairs = [(r.question, r.answer) for r in paired]
            where = [f"{r.source} field 'answer'" for r in paired]
        elif part == "retain_idk":
            paired = [retain[j] for j in pairing.retain_index]
            pairs = [(r.question, idk_templates[k]) for r, k in zip(paired, pairing.idk_index, strict=True)]
            where = [f"{r.source} field 'question' + IDK template {k}" for r, k in
                     zip(paired, pairing.idk_index, strict=True)]
        else:
            raise ValueError(f"unknown batch part {part!r}")
        out[part] = encode_checked(formatter, pairs, where, max_length)
    return PartData(out, formatter.pad_id, max_length)


def finetune_parts(formatter: ChatFormatter, records: Sequence[QARecord], max_length: int) -> PartData:
    """A single ``train`` part: the records to fine-tune on."""
    pairs = [(r.question, r.answer) for r in records]
    where = [f"{r.source} field 'answer'" for r in records]
    return PartData({"train": encode_checked(formatter, pairs, where, max_length)}, formatter.pad_id, max_length)

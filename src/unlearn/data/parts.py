"""Batch parts: the registry of what one unlearning item is made of, and the encoded data behind it.

An *item* is one forget sample; each part is one view of it, aligned by item index, so ``part[i]`` of every part
belongs to forget item ``i`` (its paired retain sample and IDK template come from :mod:`unlearn.data.pairing`).
Objectives name the parts they read (:class:`unlearn.objectives.needs.Need`); the training step runs one forward
pass per part.

Two sources fill the parts:

- :class:`QASource`: question/answer records (TOFU and everything in its layout), chat-formatted with the prompt
  masked, one EOS label;
- :class:`SequenceSource`: token sequences with a label on every token (the Markov chains; raw-text chunks).

Everything is tokenized once, up front, so a sample that is too long fails before any compute and the step only
pads and stacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from unlearn.data.collate import pad_right
from unlearn.data.formatting import ChatFormatter, EncodedSample, check_lengths
from unlearn.data.pairing import Pairing
from unlearn.data.records import QARecord
from unlearn.errors import ConfigError


@dataclass(frozen=True)
class PartSpec:
    name: str
    summary: str
    side: str  # "forget" or "retain": which side of the pairing the sample comes from
    needs_idk: bool = False
    generated: bool = False  # answers the starting model writes before training (unlearn.experiments.generated)


PARTS: dict[str, PartSpec] = {spec.name: spec for spec in (
    PartSpec("forget", "the forget sample itself (question + answer, or a forget sequence)", "forget"),
    PartSpec("forget_idk", "the forget question answered with the item's IDK template", "forget", needs_idk=True),
    PartSpec("forget_alt", "the forget question answered with an alternative the starting model wrote before "
                           "training (AltPO)", "forget", generated=True),
    PartSpec("retain", "the retain sample paired with the item", "retain"),
    PartSpec("retain_idk", "the paired retain question answered with the same IDK template", "retain",
             needs_idk=True),
)}
TRAIN_PART = "train"  # fine-tuning: the records themselves, one part


def part_order(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` in registry order (the order of the forward passes); an unknown name is a ConfigError."""
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        raise ConfigError(f"unknown batch part(s) {unknown}; known: {', '.join(PARTS)}")
    return tuple(p for p in PARTS if p in names)


@dataclass
class PartData:
    """Encoded samples per part; every list has one entry per item.

    ``feed_attention_mask=False`` leaves the attention mask out of the model inputs: with right padding and causal
    attention it never changes a real position's prediction (the Markov study's sequences are fed that way).
    """

    parts: dict[str, list[EncodedSample]]
    pad_id: int
    max_length: int
    feed_attention_mask: bool = True

    def __len__(self) -> int:
        return len(next(iter(self.parts.values())))

    def batch(self, part: str, indices: Sequence[int], pad_to_max: bool = False) -> dict[str, torch.Tensor]:
        """``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding) of the items ``indices``."""
        samples = [self.parts[part][i] for i in indices]
        return pad_right(samples, self.pad_id, self.max_length if pad_to_max else None)

    def with_generated(self, part: str, samples: Sequence[Sequence[EncodedSample]]) -> PartData:
        """These parts with ``part`` added: ``samples[i]`` are item i's generated samples, k per item; with k > 1
        every item is repeated k times (item i·k + j holds generated sample j), the other parts alike."""
        k = len(samples[0]) if samples else 1
        if len(samples) != len(self) or any(len(s) != k for s in samples):
            raise ValueError(f"part {part!r}: {k} generated sample(s) for each of the {len(self)} items expected")
        parts = {p: [s for s in rows for _ in range(k)] for p, rows in self.parts.items()}
        parts[part] = [s for item in samples for s in item]
        ordered = {p: parts[p] for p in part_order(list(parts))}
        return PartData(ordered, self.pad_id, self.max_length, self.feed_attention_mask)

    def item_lengths(self) -> list[int]:
        """Tokens per item over every part (what a micro-batch of the item pads), for length grouping."""
        return [sum(len(self.parts[p][i].input_ids) for p in self.parts) for i in range(len(self))]

    def model_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The keyword arguments of the model's forward pass for ``batch``."""
        if self.feed_attention_mask:
            return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        return {"input_ids": batch["input_ids"]}


# ------------------------------------------------------------------------------------------ QA records
@dataclass
class QASource:
    """Forget and retain QA records, paired, with the IDK templates; encodes parts with one formatter."""

    formatter: ChatFormatter
    forget: Sequence[QARecord]
    retain: Sequence[QARecord]
    idk_templates: Sequence[str]
    pairing: Pairing
    max_length: int

    def paired(self, side: str) -> list[QARecord]:
        return list(self.forget) if side == "forget" else [self.retain[j] for j in self.pairing.retain_index]

    def encode(self, part: str) -> list[EncodedSample]:
        spec = PARTS[part]
        records = self.paired(spec.side)
        if spec.needs_idk:
            pairs = [(r.question, self.idk_templates[k]) for r, k in zip(records, self.pairing.idk_index, strict=True)]
            where = [f"{r.source} field 'question' + IDK template {k}"
                     for r, k in zip(records, self.pairing.idk_index, strict=True)]
        else:
            pairs = [(r.question, r.answer) for r in records]
            where = [f"{r.source} field 'answer'" for r in records]
        return encode_checked(self.formatter, pairs, where, self.max_length,
                              [f"{r.source} field 'question'" for r in records])

    def part_data(self, parts: Sequence[str]) -> PartData:
        """The parts ``parts`` but the generated ones, which need the model (:mod:`unlearn.experiments.generated`)."""
        return PartData({p: self.encode(p) for p in part_order(parts) if not PARTS[p].generated},
                        self.formatter.pad_id, self.max_length)


def encode_checked(formatter: ChatFormatter, pairs: Sequence[tuple[str, str]], where: Sequence[str],
                   max_length: int, question_where: Sequence[str] | None = None) -> list[EncodedSample]:
    encoded = formatter.encode_pairs(pairs)
    check_lengths(encoded, max_length, where, question_where)
    return encoded


def finetune_parts(formatter: ChatFormatter, records: Sequence[QARecord], max_length: int) -> PartData:
    """A single ``train`` part: the records to fine-tune on."""
    pairs = [(r.question, r.answer) for r in records]
    where = [f"{r.source} field 'answer'" for r in records]
    questions = [f"{r.source} field 'question'" for r in records]
    return PartData({TRAIN_PART: encode_checked(formatter, pairs, where, max_length, questions)}, formatter.pad_id,
                    max_length)


# ------------------------------------------------------------------------------------------ token sequences
@dataclass
class SequenceSource:
    """Token sequences with every token a label: forget sequences and, per item, a paired retain sequence.

    ``retain_index[i]`` is the retain sequence paired with forget sequence ``i`` (see :mod:`unlearn.data.pairing`).
    Sequences have no IDK variant.
    """

    forget: Sequence[Sequence[int]]
    retain: Sequence[Sequence[int]]
    retain_index: Sequence[int]
    pad_id: int
    max_length: int
    feed_attention_mask: bool = True

    def encode(self, part: str) -> list[EncodedSample]:
        spec = PARTS[part]
        if spec.needs_idk:
            raise ConfigError(f"batch part {part!r} needs IDK templates, which token sequences do not have")
        rows = self.forget if spec.side == "forget" else [self.retain[j] for j in self.retain_index]
        return [EncodedSample.sequence(ids) for ids in rows]

    def part_data(self, parts: Sequence[str]) -> PartData:
        return PartData({p: self.encode(p) for p in part_order(parts)}, self.pad_id, self.max_length,
                        self.feed_attention_mask)


def sequence_part_data(sequences: Sequence[Sequence[int]], pad_id: int, max_length: int,
                       feed_attention_mask: bool = True) -> PartData:
    """A single ``train`` part of token sequences (pretraining a model on them)."""
    return PartData({TRAIN_PART: [EncodedSample.sequence(s) for s in sequences]}, pad_id, max_length,
                    feed_attention_mask)


PartSource = QASource | SequenceSource

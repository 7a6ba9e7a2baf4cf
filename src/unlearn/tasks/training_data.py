"""The training data of a benchmark, behind one protocol: what ``unlearn finetune`` trains on and the batch parts
``unlearn run`` unlearns with. Two kinds, chosen by the run's task (``Task.data_kind``):

- :class:`QABenchmark` (``tofu``): question/answer records in the TOFU layout, chat-formatted, paired with retain
  records and refusal templates;
- :class:`TextBenchmark` (``muse``): raw-text corpora in the MUSE layout, tokenized as one stream and cut into
  chunks, each forget chunk paired with a retain chunk.

Every check that needs no model runs in the ``prepare_*`` methods, before the model is loaded; the ``*_parts`` /
``unlearning_source`` methods encode with the model's tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from unlearn.data.checks import check_split, check_unlearning_data
from unlearn.data.formatting import ChatFormatter
from unlearn.data.pairing import pair_forget_items
from unlearn.data.parts import PARTS, PartData, QASource, SequenceSource, finetune_parts, sequence_part_data
from unlearn.data.records import QARecord
from unlearn.data.text import chunk_texts, read_texts
from unlearn.errors import ConfigError, DataError
from unlearn.tasks.muse.data import MuseData
from unlearn.tasks.tofu.data import TofuData

if TYPE_CHECKING:
    from unlearn.config.schema import RunConfig


class QABenchmark:
    """TOFU-layout QA data (TOFU itself, its subsets, the embedded fictitious authors)."""

    kind = "tofu"

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        root = cfg.data.root
        self.data = TofuData(Path(root).expanduser() if Path(root).expanduser().exists() else root)
        self.records: list[QARecord] = []

    # -- fine-tuning ----------------------------------------------------------------------------------------
    def prepare_finetune(self) -> int:
        splits = self.cfg.data.train_splits or []
        if not splits:
            raise DataError("data.train_splits is empty: nothing to fine-tune on")
        self.records = [r for split in splits for r in self.data.split(split)[:self.cfg.limit]]
        if not self.records:
            raise DataError(f"splits {splits} hold no records")
        check_split(self.records, f"the training splits {', '.join(splits)}", self.cfg.data.strict)
        return len(self.records)

    def finetune_parts(self, formatter: ChatFormatter) -> PartData:
        return finetune_parts(formatter, self.records, self.cfg.data.max_length)

    # -- unlearning -----------------------------------------------------------------------------------------
    def prepare_unlearning(self, parts: Sequence[str], idk_users: Sequence[str], name: str) -> int:
        cfg = self.cfg
        self.forget = self.data.forget_split(cfg.data.forget_split)[:cfg.limit]  # --limit: the first N rows
        needs_retain = any(PARTS[p].side == "retain" for p in parts)
        if not needs_retain:
            self.retain = self.forget
        elif cfg.data.retain_split:
            self.retain = self.data.split(cfg.data.retain_split)[:cfg.limit]
        else:
            self.retain = self.data.retain_split(cfg.data.forget_split)[:cfg.limit]
        check_unlearning_data(self.forget, self.retain if needs_retain else [], cfg.data.strict)
        needed_by = f"method {name} ({' and '.join(idk_users)})" if idk_users else None
        self.templates = self.data.idk_templates(cfg.data.idk_path, needed_by)
        self.pairing = pair_forget_items(len(self.forget), len(self.retain), len(self.templates), cfg.train.seed)
        return len(self.forget)

    @property
    def n_forget_items(self) -> int:
        """Forget items trained on: the forget split's questions."""
        return len(self.forget)

    def unlearning_parts(self, formatter: ChatFormatter, parts: Sequence[str]) -> PartData:
        source = QASource(formatter, self.forget, self.retain, self.templates, self.pairing, self.cfg.data.max_length)
        return source.part_data(parts)


class TextBenchmark:
    """MUSE-layout raw-text corpora (MUSE-News, MUSE-Books, the embedded fictitious news)."""

    kind = "muse"

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        root = cfg.data.root
        self.data = MuseData(Path(root).expanduser() if Path(root).expanduser().exists() else root)
        self.corpora: list[str] = []

    def prepare_finetune(self) -> int:
        splits = self.cfg.data.train_splits or []
        if not splits:
            raise DataError("data.train_splits is empty: nothing to fine-tune on")
        self.corpora = [t for split in splits for t in self.data.texts(split, "data.train_splits")]
        return len(self.corpora)

    def finetune_parts(self, formatter: ChatFormatter) -> PartData:
        chunks = chunk_texts(formatter.tokenizer, self.corpora, self.cfg.data.max_length, self.cfg.data.chunking)
        chunks = chunks[:self.cfg.limit]  # --limit: the first N chunks
        return sequence_part_data(chunks, formatter.pad_id, self.cfg.data.max_length)

    def prepare_unlearning(self, parts: Sequence[str], idk_users: Sequence[str], name: str) -> int:
        generated = [p for p in parts if p in PARTS and PARTS[p].generated]
        if generated:
            raise ConfigError(f"method {name} needs answers the model writes to forget questions "
                              f"({', '.join(generated)}); text corpora have no questions (use it on question/answer "
                              "data such as TOFU)")
        if idk_users:
            raise ConfigError(f"method {name} ({' and '.join(idk_users)}) needs question/answer data with refusal "
                              "templates; text corpora have none (use GA, NPO, SimNPO, W-GA or ME with GD, KL or none)")
        cfg = self.cfg
        self.forget_texts = self._corpus(cfg.data.forget_corpus, cfg.data.forget_split, "forget")
        if self.forget_texts is None:
            raise ConfigError("data.forget_corpus (a text file) or data.forget_split (a corpus of data.root) is "
                              "required: nothing to unlearn")
        self.needs_retain = any(PARTS[p].side == "retain" for p in parts)
        self.retain_texts: list[str] = []
        if self.needs_retain:
            retain = self._corpus(cfg.data.retain_corpus, cfg.data.retain_split, "retain")
            if retain is None:
                raise ConfigError(f"data.retain_split is required: method {name} regularizes on a retain corpus; "
                                  "name it, e.g. data.retain_split=privleak/retain2 (MUSE-News ships no retain "
                                  "training corpus), or give a file as data.retain_corpus")
            self.retain_texts = retain
        return len(self.forget_texts)

    def _corpus(self, path: str | None, split: str | None, side: str) -> list[str] | None:
        """A corpus file (``data.<side>_corpus``) or a corpus of the benchmark (``data.<side>_split``)."""
        if path:
            try:
                return read_texts(Path(path).expanduser())
            except DataError as err:
                raise DataError(f"data.{side}_corpus: {err}") from None
        return self.data.texts(split, f"data.{side}_split") if split else None

    def _chunks(self, tokenizer, texts: list[str], side: str) -> list[tuple[int, ...]]:
        try:
            chunks = chunk_texts(tokenizer, texts, self.cfg.data.max_length, self.cfg.data.chunking)
        except DataError as err:
            key = f"data.{side}_corpus" if getattr(self.cfg.data, f"{side}_corpus") else f"data.{side}_split"
            raise DataError(f"{key}: {err}") from None
        return chunks[:self.cfg.limit]  # --limit: the first N chunks

    @property
    def n_forget_items(self) -> int:
        """Forget items trained on: the forget corpus's chunks (after :meth:`unlearning_parts`)."""
        return self.n_chunks

    def unlearning_parts(self, formatter: ChatFormatter, parts: Sequence[str]) -> PartData:
        cfg, tokenizer = self.cfg, formatter.tokenizer
        forget = self._chunks(tokenizer, self.forget_texts, "forget")
        retain = self._chunks(tokenizer, self.retain_texts, "retain") if self.needs_retain else forget
        pairing = pair_forget_items(len(forget), len(retain), 1, cfg.train.seed)
        self.n_chunks = len(forget)
        return SequenceSource(forget, retain, pairing.retain_index, formatter.pad_id, cfg.data.max_length).part_data(
            parts)


BENCHMARK_DATA = {cls.kind: cls for cls in (QABenchmark, TextBenchmark)}
Benchmark = QABenchmark | TextBenchmark

"""MUSE-layout benchmarks (MUSE-News, MUSE-Books, and our embedded fictitious news): a directory of subsets, or the
Hugging Face names ``muse-bench/MUSE-News`` / ``muse-bench/MUSE-Books``.

Everything is addressed as ``SUBSET/SPLIT``:

| name | content |
|---|---|
| ``raw/forget``, ``raw/retain1``, ``raw/holdout`` | raw corpora (``.txt``, or ``.json`` lists of texts) |
| ``sust/forget_1`` … ``sust/forget_4`` | the sequential forget requests (pairwise disjoint) |
| ``verbmem/forget`` | ``{prompt, gt}``: a forget text's opening and its true continuation |
| ``knowmem/forget_qa``, ``knowmem/retain_qa`` (+ ``_icl``) | ``{question, answer}`` QA and the few-shot examples |
| ``privleak/forget``, ``privleak/holdout``, ``privleak/retain`` | texts for membership inference |

The MUSE authors' pre-release copy names the retain splits ``retain2`` (``knowmem/retain2_qa``, ``privleak/retain2``);
both names are accepted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from unlearn.data.files import inside_root, read_raw_rows
from unlearn.data.records import QARecord, record_from_dict
from unlearn.data.text import read_texts
from unlearn.errors import DataError

HUB_NAMES = {"muse-bench/MUSE-News", "muse-bench/MUSE-Books"}
ALIASES = {"knowmem/retain_qa": "knowmem/retain2_qa", "knowmem/retain_qa_icl": "knowmem/retain2_qa_icl",
           "privleak/retain": "privleak/retain2"}
SUFFIXES = (".json", ".txt", ".jsonl")


@dataclass(frozen=True)
class VerbmemItem:
    prompt: str
    gt: str
    source: str


class MuseData:
    """Access to one MUSE-layout benchmark; every name is ``SUBSET/SPLIT`` (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = str(root)
        self.is_local = Path(self.root).is_dir()
        if not self.is_local and not re.match(r"^[\w.-]+/[\w.-]+$", self.root):
            raise DataError(f"data root {self.root!r} is neither a directory nor a Hugging Face dataset name")

    # -- locating ---------------------------------------------------------------------------------------------
    def _candidates(self, name: str) -> list[str]:
        name = name.strip("/")
        names = [name]
        reverse = {v: k for k, v in ALIASES.items()}
        for table in (ALIASES, reverse):
            if name in table:
                names.append(table[name])
        return names

    def path(self, name: str) -> Path | None:
        """The local file holding ``name`` (None on the hub or when missing)."""
        if not self.is_local:
            return None
        for candidate in self._candidates(name):
            given = inside_root(self.root, candidate)
            if given.suffix in SUFFIXES and given.is_file():
                return given
            for suffix in SUFFIXES:
                if given.with_name(given.name + suffix).is_file():
                    return given.with_name(given.name + suffix)
        return None

    def has(self, name: str) -> bool:
        return self.path(name) is not None if self.is_local else True

    def _require(self, name: str, key: str) -> Path:
        path = self.path(name)
        if path is None:
            tried = " or ".join(f"{self.root}/{c}(.txt|.json)" for c in self._candidates(name))
            raise DataError(f"{key}: {name!r} not found (looked for {tried})")
        return path

    def _hub_rows(self, name: str, key: str) -> list[dict]:
        subset, _, split = self._candidates(name)[0].partition("/")
        try:
            import datasets

            rows = datasets.load_dataset(self.root, subset, split=split)
        except Exception as err:
            raise DataError(f"{key}: could not load {name!r} from the Hugging Face dataset {self.root!r} ({err}); "
                            "offline? point data.root at a local copy") from None
        return [dict(r) for r in rows]

    # -- contents ---------------------------------------------------------------------------------------------
    def texts(self, name: str, key: str = "data") -> list[str]:
        """A corpus: its texts (a ``.txt`` file is one text)."""
        if not self.is_local:
            rows = self._hub_rows(name, key)
            texts = [r["text"] for r in rows if isinstance(r.get("text"), str)]
            if not texts:
                raise DataError(f"{key}: {self.root} {name!r} holds no texts")
            return texts
        path = self._require(name, key)
        try:
            return read_texts(path)
        except DataError as err:
            raise DataError(f"{key}: {err}") from None

    def verbmem(self, name: str = "verbmem/forget", key: str = "eval") -> list[VerbmemItem]:
        rows, where = self._rows(name, key)
        out = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or not all(isinstance(row.get(f), str) and row[f].strip()
                                                    for f in ("prompt", "gt")):
                raise DataError(f"{where}: row {i} needs non-empty 'prompt' and 'gt' strings (fields present: "
                                f"{sorted(row) if isinstance(row, dict) else type(row).__name__})")
            out.append(VerbmemItem(row["prompt"], row["gt"], f"{where}:{i}"))
        return out

    def qa(self, name: str, key: str = "eval") -> list[QARecord]:
        rows, where = self._rows(name, key)
        return [record_from_dict(row, where, i) for i, row in enumerate(rows)]

    def _rows(self, name: str, key: str) -> tuple[list, str]:
        if not self.is_local:
            rows = self._hub_rows(name, key)
            where = f"hf://{self.root}/{name}"
        else:
            path = self._require(name, key)
            rows, where = [r for r, _ in read_raw_rows(path)], str(path)
        if not rows:
            raise DataError(f"{where}: no rows")
        return rows, where


def write_muse_layout(root: str | Path, files: dict[str, object]) -> Path:
    """Write ``{"SUBSET/SPLIT.ext": content}`` (a string for ``.txt``, JSON-serialisable rows otherwise)."""
    from unlearn.io import write_text

    root = Path(root)
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, indent=1)
        write_text(root / name, text)
    return root

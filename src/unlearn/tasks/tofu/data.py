"""TOFU-layout benchmarks: a directory of split files (any of the three JSON layouts) or a HF dataset name.

Split names follow the TOFU release: ``full``, ``forgetXX``, ``retainYY`` (YY = 100 − XX), ``*_perturbed``,
``real_authors*``, ``world_facts*``, plus ``idontknow.jsonl``. Our generated benchmark writes the same layout,
so everything downstream treats the two alike.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from unlearn.data.files import inside_root, read_records, read_text_lines
from unlearn.data.idk import builtin_idk_templates
from unlearn.data.records import QARecord, record_from_dict
from unlearn.errors import DataError

FORGET_SPLIT = re.compile(r"^forget(\d{2})$")
EVAL_FIELDS = ("question", "answer", "paraphrased_answer", "perturbed_answer")
OPTION_EVAL_FIELDS = ("question", "answer", "perturbed_answer")  # real_authors / world_facts: no paraphrase


def forget_percent(split: str) -> int:
    match = FORGET_SPLIT.match(split)
    if not match:
        raise DataError(f"forget split must look like 'forget05' (forgetXX), got {split!r}")
    return int(match.group(1))


def retain_split_for(forget_split: str) -> str:
    """``forget05`` → ``retain95`` (the TOFU complement naming)."""
    return f"retain{100 - forget_percent(forget_split):02d}"


class TofuData:
    """Access to the splits of one TOFU-layout benchmark.

    ``root`` is a directory, or a Hugging Face dataset name such as ``locuslab/TOFU`` (needs the hub).
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = str(root)
        self.is_local = Path(self.root).is_dir()
        if not self.is_local and not re.match(r"^[\w.-]+/[\w.-]+$", self.root):
            raise DataError(f"data root {self.root!r} is neither a directory nor a Hugging Face dataset name")
        self._cache: dict[tuple[str, tuple[str, ...]], list[QARecord]] = {}

    # -- files -----------------------------------------------------------------------------------------
    def local_file(self, name: str) -> Path | None:
        for suffix in (".json", ".jsonl"):
            candidate = inside_root(self.root, f"{name}{suffix}")
            if candidate.is_file():
                return candidate
        return None

    def available_splits(self) -> list[str]:
        if not self.is_local:
            return []
        return sorted(p.stem for p in Path(self.root).iterdir() if p.suffix in (".json", ".jsonl"))

    def has_split(self, name: str) -> bool:
        if self.is_local:
            return self.local_file(name) is not None
        return True  # on the hub we only know by trying

    def split(self, name: str, require: tuple[str, ...] = ("question", "answer")) -> list[QARecord]:
        """All records of split ``name``, validated; a missing split is a :class:`DataError`."""
        key = (name, require)
        if key not in self._cache:
            self._cache[key] = self._load_local(name, require) if self.is_local else self._load_hub(name, require)
        return self._cache[key]

    def _load_local(self, name: str, require: tuple[str, ...]) -> list[QARecord]:
        path = self.local_file(name)
        if path is None:
            raise DataError(
                f"split {name!r} not found in {self.root} (looked for {name}.json / {name}.jsonl); "
                f"available: {', '.join(self.available_splits()) or 'none'}"
            )
        return read_records(path, require)

    def _load_hub(self, name: str, require: tuple[str, ...]) -> list[QARecord]:
        try:
            import datasets
        except ImportError as err:  # pragma: no cover - datasets is a dependency
            raise DataError("loading from the Hugging Face hub needs the 'datasets' package") from err
        try:
            rows = datasets.load_dataset(self.root, name, split="train")
        except Exception as err:
            raise DataError(
                f"could not load split {name!r} of {self.root!r} from the Hugging Face hub ({err}). "
                "Offline? Point data.root at a local directory of split files instead."
            ) from None
        origin = f"hf://{self.root}/{name}"
        return [record_from_dict(dict(row), origin, i, None, require) for i, row in enumerate(rows)]

    # -- TOFU conventions ----------------------------------------------------------------------------------
    def forget_split(self, split: str) -> list[QARecord]:
        """The records to unlearn. Any split name works when the retain split is named (real-world ``forget``);
        only deriving the retain complement needs TOFU's ``forgetXX`` (:meth:`retain_split`)."""
        records = self.split(split)
        if not records:
            raise DataError(f"forget split {split!r} in {self.root} is empty: nothing to unlearn")
        return records

    def retain_split(self, forget_split: str) -> list[QARecord]:
        """The retain complement of ``forget_split``: ``retainYY`` if present, else ``full`` minus forget."""
        if not FORGET_SPLIT.match(forget_split):
            raise DataError(f"no retain split is named and forget split {forget_split!r} is not TOFU's forgetXX, "
                            "whose complement retain{100-XX} could be derived; set data.retain_split")
        name = retain_split_for(forget_split)
        if self.has_split(name):
            records = self.split(name)
        else:
            forget = {(r.question, r.answer) for r in self.forget_split(forget_split)}
            records = [r for r in self.split("full") if (r.question, r.answer) not in forget]
        if not records:
            raise DataError(f"retain split for {forget_split!r} in {self.root} is empty")
        return records

    def idk_templates(self, choice: str = "auto", needed_by: str | None = None) -> list[str]:
        """Refusal templates for IDK, DPO and AP (docs/formulas.md#idk). ``choice``: ``auto``
        (``<root>/idontknow.jsonl``), ``builtin``, or a file.

        With ``auto`` and no file in the root, a method that needs templates (``needed_by``) is an error
        rather than a silent switch to other templates; otherwise the built-in ones fill in.
        """
        if choice == "builtin":
            return builtin_idk_templates()
        if choice != "auto":
            return read_text_lines(choice)
        local = Path(self.root) / "idontknow.jsonl"
        if self.is_local and local.is_file():
            return read_text_lines(local)
        if needed_by is not None:
            raise DataError(
                f"{needed_by} needs IDK templates but {local if self.is_local else self.root} has no idontknow.jsonl; "
                "set data.idk_path=FILE (one refusal per line) or data.idk_path=builtin"
            )
        return builtin_idk_templates()

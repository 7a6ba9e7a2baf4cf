"""Cross-run reuse: runs that start from the same model on the same data share the starting model's evaluation
(epoch 0 of ``train.eval_every_epoch``) and NPO/DPO's cached reference log-probs, through a directory, ``cache_dir``
(a sweep sets ``OUT/cache``; docs/sweeps.md#reuse-across-runs).

An entry is found by the sha256 of its *key*: everything that can change its numbers, written out in full beside
them and compared again when the entry is read (a mismatch is recomputed, never trusted):

- both kinds: the toolkit's own sources (:func:`unlearn.provenance.source_sha256`, so an edited checkout never
  reads an entry of other code), the library versions, the device and its mixed precision;
- the starting evaluation: the starting model's weights digest, every data file the run read by content, the
  retain reference's results by content, the task and its version, and the resolved ``model``, ``data``, ``eval``
  and ``limit`` settings with the training settings that change an evaluation of the starting model (``train.seed``
  — generation and bootstrap seeds —, ``mixed_precision``, ``lora``, ``compile``); a weight-edit method's epoch 0 is
  the edit of the unchanged weights, so its method and parameters join the key;
- reference log-probs: the reference model's weights digest (and SimNPO App. B's perturbation with its seed), the
  encoded tokens and labels of each part, the batch size, the padding and the weights' dtype.

A run whose starting model has no weights digest (a hub model not in the local cache) shares nothing. What a run
took from the cache, and from which run, is written into its provenance (``cache``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from unlearn.config import to_dict
from unlearn.data.parts import PartData
from unlearn.experiments.plan import RunPlan
from unlearn.io import atomic_path, read_json, write_json
from unlearn.objectives.weight_edit import WeightEditMethod
from unlearn.runs import RunDirectory

log = logging.getLogger("unlearn")

EVALUATION = "epoch0"
REFERENCE = "reference_logp"
TRAIN_KEYS = ("seed", "mixed_precision", "lora", "compile")
"""Training settings that change the evaluation of the starting model (the seed: sampled generations and bootstrap
intervals; LoRA: the adapted model, whose zero-initialised adapters leave it unchanged, kept apart all the same)."""


def key_digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(key).encode("utf-8")).hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reference_digest(path: str | None) -> str | None:
    """The retain reference by content: a run directory by its ``metrics.json`` (written last, so every rerun
    changes it) or its TOFU eval log, a file by itself; None when there is none."""
    if not path:
        return None
    where = Path(path).expanduser()
    if where.is_file():
        return file_digest(where)
    run = RunDirectory(where)
    for candidate in (run.metrics_file, run.tofu_log_file):
        if candidate.is_file():
            return file_digest(candidate)
    return "missing"


def parts_digest(data: PartData, parts: Sequence[str], padded: Sequence[str]) -> dict[str, str]:
    """Per part: the sha256 of every item's token ids and labels in item order, with its padding."""
    out = {}
    for part in parts:
        digest = hashlib.sha256(f"pad={data.pad_id};mask={data.feed_attention_mask};".encode())
        if part in padded:
            digest.update(f"to={data.max_length};".encode())
        for sample in data.parts[part]:
            digest.update(json.dumps([sample.input_ids, sample.labels]).encode())
        out[part] = digest.hexdigest()
    return out


def canonical(key: Mapping[str, Any]) -> str:
    """The key as one JSON text (sorted keys; tuples and lists alike), what its digest and every comparison use."""
    return json.dumps(key, sort_keys=True, default=str)


def _state():
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    return _state().is_main_process


def agreed(flag: bool) -> bool:
    """``flag`` as the main process sees it, on every process of a multi-process launch."""
    if _state().num_processes == 1:
        return flag
    from accelerate.utils import broadcast_object_list

    return bool(broadcast_object_list([flag])[0])


def entry_lock(path: Path) -> FileLock:
    """An exclusive lock on one entry (released when its process ends, even killed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")


@dataclass
class SharedCache:
    """One run's view of the shared cache: where it is, what identifies the run's starting point, and what it took
    from or gave to the cache (``used``, written into the run's provenance)."""

    root: Path
    common: dict[str, Any]
    model_sha256: str
    run: RunDirectory
    used: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_run(cls, plan: RunPlan, provenance: dict[str, Any]) -> SharedCache | None:
        """The cache of a run with ``cache_dir`` set whose starting model has a weights digest; None otherwise."""
        if not plan.cfg.cache_dir:
            return None
        weights = (provenance.get("model") or {}).get("weights_sha256")
        if not weights:
            log.info("cache_dir: nothing is shared: the starting model %s has no weights digest", plan.cfg.model.path)
            return None
        toolkit = provenance.get("toolkit") or {}
        common = {"toolkit_source": toolkit.get("source_sha256"), "versions": provenance.get("versions"),
                  "device": {k: (provenance.get("device") or {}).get(k) for k in ("type", "name", "mixed_precision")}}
        cache = cls(Path(plan.cfg.cache_dir).expanduser(), common, weights, plan.run)
        provenance["cache"] = cache.used
        return cache

    # -- entries -----------------------------------------------------------------------------------------
    def _path(self, kind: str, key: Mapping[str, Any], suffix: str) -> Path:
        return self.root / kind / f"{key_digest(key)}{suffix}"

    def _note(self, kind: str, key: Mapping[str, Any], source: str | None) -> None:
        self.used[kind] = {"entry": key_digest(key), "reused_from": source}

    # -- the starting model's evaluation ------------------------------------------------------------------
    def evaluation_key(self, plan: RunPlan, provenance: Mapping[str, Any]) -> dict[str, Any]:
        values = to_dict(plan.cfg)
        key = {**self.common, "kind": EVALUATION, "model_sha256": self.model_sha256,
               "data": [(f["file"], f["sha256"]) for f in provenance.get("data") or []],
               "retain_reference": reference_digest(plan.cfg.eval.retain_reference),
               "task": [plan.task.name, plan.task.version],
               "config": {"model": values["model"], "data": values["data"], "eval": values["eval"],
                          "limit": values["limit"], "train": {k: values["train"][k] for k in TRAIN_KEYS}}}
        if isinstance(plan.method, WeightEditMethod):
            key["config"] |= {"method": values["method"], "forget": values["forget"]}
        return key

    def share_epoch_zero(self, hook: Callable[[int, torch.nn.Module], dict], key: dict[str, Any]
                         ) -> Callable[[int, torch.nn.Module], dict]:
        """``hook`` whose epoch-0 record comes from the cache when a run stored it, else is computed and stored.
        The entry is locked while it is looked up and computed, so runs that start together compute it once: the
        others wait for it. The main process decides, and every process of a multi-process run follows it (they
        share out an evaluation that is computed)."""
        path = self._path(EVALUATION, key, ".json")

        def shared(epoch: int, model: torch.nn.Module) -> dict:
            if epoch != 0:
                return hook(epoch, model)
            main = is_main_process()
            with entry_lock(path) if main else contextlib.nullcontext():
                stored = self._read_record(path, key) if main else None
                if agreed(stored is not None):
                    if stored is None:  # another process than the main one, which alone writes the epoch's row
                        return {}
                    self._note(EVALUATION, key, stored["source"])
                    log.info("epoch 0: the starting model's evaluation from the shared cache (run %s)",
                             stored["source"])
                    return stored["record"]
                record = hook(epoch, model)
                if main:
                    write_json(path, {"key": key, "source": str(self.run.path), "record": record})
                    self._note(EVALUATION, key, None)
                return record

        return shared

    @staticmethod
    def _read_record(path: Path, key: Mapping[str, Any]) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        try:
            entry = read_json(path)
        except (OSError, ValueError):
            log.warning("warning: %s is unreadable; the starting model is evaluated again", path)
            return None
        if (not isinstance(entry, dict) or canonical(entry.get("key") or {}) != canonical(key)
                or not isinstance(entry.get("record"), dict)):
            log.warning("warning: %s does not hold the entry of this key; the starting model is evaluated again", path)
            return None
        return entry

    # -- reference log-probs ------------------------------------------------------------------------------
    def reference_logp(self, compute: Callable[[], dict[str, torch.Tensor]], *, reference_sha256: str | None,
                       parts: dict[str, str], settings: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``compute()`` (the cached reference log-probs of :func:`unlearn.train.reference.cached_reference_logp`),
        or the tensors an earlier run stored under the same key. A reference without a weights digest is computed
        and not stored."""
        if reference_sha256 is None:
            return compute()
        key = {**self.common, "kind": REFERENCE, "reference_sha256": reference_sha256, "parts": parts,
               "settings": settings}
        path = self._path(REFERENCE, key, ".safetensors")
        with entry_lock(path):  # every process of a run computes its own; locked, the first one's is read
            found = self._read_tensors(path, key, parts)
            if found is not None:
                tensors, source = found
                self._note(REFERENCE, key, source)
                log.info("reference log-probs from the shared cache (run %s)", source)
                return tensors
            tensors = compute()
            from safetensors.torch import save_file

            with atomic_path(path) as tmp:
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp),
                          metadata={"key": canonical(key), "source": str(self.run.path)})
            self._note(REFERENCE, key, None)
            return tensors

    @staticmethod
    def _read_tensors(path: Path, key: Mapping[str, Any], parts: Mapping[str, str]
                      ) -> tuple[dict[str, torch.Tensor], str] | None:
        if not path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        except Exception:  # a truncated or foreign file: recomputed
            log.warning("warning: %s is unreadable; the reference log-probs are computed again", path)
            return None
        if meta.get("key") != canonical(key) or set(tensors) != set(parts):
            log.warning("warning: %s does not hold the entry of this key; the reference log-probs are computed again",
                        path)
            return None
        return tensors, meta.get("source", "unknown")

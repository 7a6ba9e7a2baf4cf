"""``unlearn export RUN_DIR OUT``: a run's unlearned model as a shareable Hugging Face model folder — the weights
(safetensors), the tokenizer and the generation config as the run saved them, and a model card (``README.md`` with
Hugging Face's YAML metadata) that says what was done and measured: the base model, the method and its recipe with
their sources, the data, the metrics with their 95 % intervals, the provenance and how to cite the toolkit. The folder
is ready for ``huggingface-cli upload``.

Runs merge LoRA adapters into the weights before saving (``model/``); a LoRA run also keeps its adapter
(``model/adapter/``), which ``--adapter`` exports instead, for ``peft``'s ``PeftModel.from_pretrained``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from unlearn.errors import UnlearnError
from unlearn.io import atomic_dir, write_text
from unlearn.provenance import WEIGHTS_CACHE
from unlearn.rendering.tables import MISSING, fmt_ci, fmt_fq, fmt_small, md_table
from unlearn.runs import LIMITED, RunDirectory, RunResults

ADAPTER = RunDirectory.ADAPTER
CITATION = """@software{unlearn,
  title  = {unlearn: machine unlearning for large language models},
  author = {{The unlearn developers}},
  year   = {2026},
  note   = {Python package llm-unlearn}
}"""


def check_export(run: RunDirectory, out: Path, adapter: bool) -> Path:
    """The folder to export (the saved model, or its adapter), every problem one line before anything is copied."""
    if not run.path.is_dir():
        raise UnlearnError(f"{run.path}: no such run directory")
    if not run.is_complete():
        raise UnlearnError(f"{run.path} is not a finished run (no {RunDirectory.METRICS}): export a finished run, "
                           "whose card can give its metrics")
    source = run.model_dir / ADAPTER if adapter else run.model_dir
    if not (run.model_dir / "config.json").is_file():
        raise UnlearnError(f"{run.path} has no saved model ({run.model_dir}/config.json is missing): rerun it with "
                           "save_model=true")
    if adapter and not (source / "adapter_config.json").is_file():
        raise UnlearnError(f"{run.path} keeps no LoRA adapter ({source}/adapter_config.json is missing): --adapter "
                           "exports the adapter of a run with train.lora=true and save_model=true; export the "
                           "merged weights without --adapter")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UnlearnError(f"{out} is not an empty folder: export into a new or empty one")
    if out.resolve() == run.path.resolve() or run.path.resolve() in out.resolve().parents:
        raise UnlearnError(f"{out} lies inside the run directory {run.path}: export elsewhere")
    return source


def export_model(run_dir: str | Path, out: str | Path, adapter: bool = False) -> Path:
    """Copy the run's saved model (or its LoRA adapter) to ``out`` with a model card; returns ``out``."""
    run, out = RunDirectory(run_dir), Path(out)
    source = check_export(run, out, adapter)
    results = run.read_results()
    config = run.read_config() or {}
    card = model_card(results, config, adapter)
    with atomic_dir(out) as tmp:
        for item in sorted(source.iterdir()):
            if item.name in (WEIGHTS_CACHE, ADAPTER):
                continue  # our cache, and the adapter of a merged export
            if item.is_dir():
                shutil.copytree(item, tmp / item.name)
            else:
                shutil.copy2(item, tmp / item.name)
        write_text(tmp / "README.md", card)
    return out


def _base_model(results: RunResults, config: Mapping[str, Any]) -> str | None:
    model = (results.provenance or {}).get("model") or {}
    return model.get("path") or (config.get("model") or {}).get("path")


def metrics_table(metrics: Mapping[str, Any]) -> list[str]:
    """Run-level numbers, then one row per evaluated set (95 % bootstrap intervals where the run has them), in the
    rendering kit's formats (FQ as ``1.23e-04``, as in every report)."""
    lines: list[str] = []
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if scalars:
        rows = [[k, fmt_fq(v) if k == "forget_quality" else fmt_small(v)] for k, v in scalars.items()]
        lines += [md_table(["metric", "value"], rows), ""]
    sets = metrics.get("sets") or {}
    keys = sorted({k for s in sets.values() for k, v in s.items() if isinstance(v, (int, float)) and k != "n"})
    if sets and keys:
        rows = [[name, str(s.get("n", MISSING)), *(fmt_ci(s.get(k), (s.get("ci95") or {}).get(k)) for k in keys)]
                for name, s in sets.items()]
        lines += [md_table(["set", "n", *keys], rows), ""]
    return lines


def model_card(results: RunResults, config: Mapping[str, Any], adapter: bool = False) -> str:
    """``README.md`` of an exported model: Hugging Face's YAML metadata, then what was done and measured."""
    info = results.run
    method = (info.method if info is not None else None) or {}
    recipe = method.get("recipe") or {}
    base = _base_model(results, config)
    data = config.get("data") or {}
    tags = ["unlearn", "machine-unlearning", *([method["name"]] if method.get("name") else [])]
    meta: dict[str, Any] = {"library_name": "peft" if adapter else "transformers", "tags": tags}
    if base:
        meta["base_model"] = base
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {method.get('name', info.stage if info else 'model')} on {results.task}", ""]
    if results.limited is not None:
        lines += [f"**{LIMITED}**: this model comes from a smoke test (`--limit {results.limited}`).", ""]
    what = "the LoRA adapter" if adapter else "the weights (LoRA adapters, if any, merged)"
    lines += [f"Unlearned with [unlearn](https://pypi.org/project/llm-unlearn/); this folder holds {what}, the "
              "tokenizer and the generation config as the run saved them.", "",
              "## What was done", "",
              f"- base model: `{base}`" if base else "- base model: unknown",
              f"- task: {results.task}" + (f" (protocol version {results.provenance['task']['version']})"
                                           if results.provenance else ""),
              f"- data: `{data.get('root')}`, forget split `{info.forget_split if info else None}`"]
    if method:
        lines.append(f"- method: `{method.get('name')}` — forget: {method.get('forget')}; retain: "
                     f"{method.get('retain')}; weights: forget {method.get('forget_weight')}, retain "
                     f"{method.get('retain_weight')}")
    if recipe:
        lines.append(f"- recipe: `{recipe.get('name')}` — {recipe.get('source', '')}")
    if info is not None and info.optimizer_steps is not None:
        lines.append(f"- optimizer steps: {info.optimizer_steps}")
    lines += ["", "## Metrics", "", *metrics_table(results.metrics)]
    if results.provenance:
        p = results.provenance
        toolkit = p.get("toolkit") or {}
        git = toolkit.get("git") or {}
        versions = ", ".join(f"{k} {v}" for k, v in (p.get("versions") or {}).items() if v)
        device = p.get("device") or {}
        lines += ["## Provenance", "",
                  f"- unlearn {toolkit.get('version')}" + (f", commit {git.get('commit')}"
                                                           + (" (dirty)" if git.get("dirty") else "")
                                                           if git.get("commit") else ""),
                  f"- {versions}",
                  f"- device: {device.get('type')} ({device.get('name')}) × {device.get('count')}, mixed precision "
                  f"{device.get('mixed_precision')}; seed {p.get('seed')}",
                  f"- command: `{' '.join(p.get('command') or [])}`",
                  f"- config sha256: `{p.get('config_sha256')}`",
                  f"- starting model weights sha256: `{(p.get('model') or {}).get('weights_sha256')}`",
                  f"- these weights' sha256 (as the run saved them): "
                  f"`{(p.get('saved_model') or {}).get('weights_sha256')}`"]
        lines += [f"- data file `{f['file']}`: sha256 `{f['sha256']}`, {f['rows']} rows" for f in p.get("data") or []]
        lines.append("")
    lines += ["## Citation", "", "```bibtex", CITATION, "```", ""]
    return "\n".join(lines)

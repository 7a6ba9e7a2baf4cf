"""``unlearn eval``: evaluate a model on the TOFU sets — or, with ``--from-generations RUN_DIR``, rescore a run's
saved generations without its model (e.g. text metrics of a GPU run computed on a CPU afterwards)."""

from __future__ import annotations

from pathlib import Path

from unlearn.config import RunConfig
from unlearn.errors import ConfigError
from unlearn.evaluation.tofu_eval import RetainReference, TextScorer, read_rows, score_rows, write_eval
from unlearn.experiments.common import (
    Timer,
    build_evaluator,
    finish_run,
    load_model,
    make_accelerator,
    open_data,
    run_directory,
    save_config,
)
from unlearn.io import read_json
from unlearn.models.loading import load_tokenizer, resolve_model


def run_evaluation(cfg: RunConfig) -> Path:
    timer = Timer()
    if cfg.eval.from_generations:
        return rescore_generations(cfg)
    if not cfg.eval.enabled:
        raise ConfigError("eval.enabled=false: nothing to do for `unlearn eval`")
    data = open_data(cfg)
    model, _, formatter = load_model(cfg)
    evaluator = build_evaluator(cfg, data, formatter)
    run_dir = run_directory(cfg, "runs/eval")
    save_config(run_dir, cfg)
    accelerator = make_accelerator(cfg)
    model.to(accelerator.device)
    with accelerator.autocast():
        result = evaluator.evaluate(model, accelerator.device)
    write_eval(run_dir, result, {"run": {"kind": "eval", "model": cfg.model.path}, "seconds": timer.seconds})
    finish_run(run_dir)
    return run_dir


def rescore_generations(cfg: RunConfig) -> Path:
    """Recompute ROUGE, TE, CS, ES and every aggregate from ``eval/*.jsonl`` of a finished run.

    Token Entropy uses the token ids saved with each generation; without them the tokenizer of ``model.path``
    (or of the run's own config) is loaded — never the model weights. Results replace the run's files
    (atomically) unless ``output_dir`` names another directory.
    """
    source = Path(cfg.eval.from_generations)
    samples = read_rows(source)
    if any(r.get("generation") is None for rows in samples.values() for r in rows):
        raise ConfigError(f"{source}: the saved rows have no generations (evaluated with eval.generate=false)")
    old = read_json(source / "metrics.json") if (source / "metrics.json").is_file() else {}
    tokenizer = None
    if any("generation_tokens" not in r for rows in samples.values() for r in rows):
        model_path = cfg.model.path or _run_model_path(source)
        if not model_path:
            raise ConfigError(f"{source}: rows lack token ids; give model.path so its tokenizer can count tokens")
        tokenizer = load_tokenizer(resolve_model(model_path, cfg.model.gguf_file), cfg.model.tokenizer,
                                   cfg.model.trust_remote_code)
    reference_path = cfg.eval.retain_reference or old.get("forget_quality_reference")
    reference = RetainReference.load(reference_path) if reference_path else None
    scorer = TextScorer(tokenizer, cfg.eval.embedding_model, cfg.eval.nli_model)
    result = score_rows(samples, scorer, reference, cfg.eval.bootstrap, cfg.train.seed)
    out = Path(cfg.output_dir) if cfg.output_dir else source
    kept = {k: v for k, v in old.items() if k not in result.metrics}
    kept["rescored_from_generations"] = str(source)
    write_eval(out, result, kept)
    finish_run(out)
    return out


def _run_model_path(run_dir: Path) -> str | None:
    config = run_dir / "config.yaml"
    if not config.is_file():
        return None
    import yaml

    return (yaml.safe_load(config.read_text()) or {}).get("model", {}).get("path") or None

"""Sequential unlearning requests (MUSE's "sustainability", SimNPO App. I.4 / Fig. A5): forget ``sust/forget_1``,
then ``sust/forget_2`` from the result, and so on; evaluate after every request.

Each request is an ordinary unlearning run (``OUTPUT/request_1``, …) whose starting model is the previous request's
result, so an NPO reference is the model before *that* request, as in MUSE's scripts. Finished requests are reused
when the command is run again (the configuration must match), so an interrupted sequence resumes. The output is
``sequential.json`` (KnowMem forget / retain, VerbMem and PrivLeak after each request), ``sequential.md`` and a plot.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig
from unlearn.errors import ConfigError
from unlearn.experiments.common import Timer, check_evaluation, open_data, with_task_defaults
from unlearn.experiments.stages import run_stage
from unlearn.experiments.unlearning import run_unlearning, unlearning_config_text
from unlearn.io import write_json, write_text
from unlearn.rendering import plots
from unlearn.rendering.tables import fmt
from unlearn.reporting.report import md_table
from unlearn.runs import RunDirectory
from unlearn.tasks.training_data import TextBenchmark

DEFAULT_REQUESTS = tuple(f"sust/forget_{i}" for i in range(1, 5))
METRICS = (("knowmem_f", "KnowMem forget ↓"), ("knowmem_r", "KnowMem retain ↑"), ("verbmem_f", "VerbMem forget ↓"),
           ("privleak", "PrivLeak (→ 0)"))


def request_configs(cfg: RunConfig, requests: Sequence[str], out: Path) -> list[RunConfig]:
    """One unlearning configuration per request: request i starts from request i−1's saved model."""
    if not requests:
        raise ConfigError("sequential unlearning needs at least one request (e.g. sust/forget_1)")
    configs, start = [], cfg.model.path
    for i, split in enumerate(requests, 1):
        c = copy.deepcopy(cfg)
        c.data.forget_split = split
        c.model.path = str(start)
        c.output_dir = str(out / f"request_{i}")
        c.save_model = True
        configs.append(c)
        start = RunDirectory(c.output_dir).model_dir
    return configs


def run_sequential(cfg: RunConfig, requests: Sequence[str] = DEFAULT_REQUESTS, echo=print) -> dict[str, Any]:
    """Unlearn ``requests`` one after another from ``cfg.model``; return (and write) the per-request table."""
    timer = Timer()
    if not cfg.output_dir:
        raise ConfigError("output_dir is required: the requests' run directories go under it")
    out = Path(cfg.output_dir)
    cfg = with_task_defaults(cfg)
    data = open_data(cfg)  # every request's corpus must exist before the first one trains
    if not isinstance(data, TextBenchmark):
        raise ConfigError(f"sequential requests run on the MUSE-layout tasks (eval.task=muse, muse_news, muse_books); "
                          f"eval.task={cfg.eval.task} is a question/answer benchmark")
    check_evaluation(cfg)
    for split in requests:
        data.data.texts(split, f"request {split}")
    configs = request_configs(cfg, requests, out)
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(configs, 1):
        echo(f"[{i}/{len(configs)}] unlearning {c.data.forget_split} from {c.model.path}")
        run = RunDirectory(c.output_dir)
        run_stage(run, unlearning_config_text(c), lambda c=c, **how: run_unlearning(c, **how))
        metrics = run.read_results().metrics
        rows.append({"request": i, "forget_split": c.data.forget_split, "run_dir": str(run.path),
                     **{key: metrics.get(key) for key, _ in METRICS}})
    result = {"method": cfg.method.name, "requests": list(requests), "rows": rows, "seconds": timer.seconds}
    write_json(out / "sequential.json", result)
    write_text(out / "sequential.md", format_sequential(result, out))
    return result


def format_sequential(result: dict[str, Any], out: Path | None = None) -> str:
    """The per-request table (and the plot, drawn into ``out/plots`` when given)."""
    rows = result["rows"]
    keys = [(k, label) for k, label in METRICS if any(r.get(k) is not None for r in rows)]
    body = [[str(r["request"]), r["forget_split"], *(fmt(r.get(k), 2) for k, _ in keys)]
            for r in rows]
    lines = [f"# Sequential unlearning: {result['method']}", "",
             "Each request starts from the previous request's model (MUSE's sustainability setting; SimNPO App. I.4).",
             "", md_table(["request", "forget split", *(label for _, label in keys)], body), ""]
    if out is not None:
        series = {label: [(r["request"], r[k]) for r in rows if r.get(k) is not None]
                  for k, label in keys if k.startswith("knowmem")}
        if series:
            path = plots.plot_metric_curves(series, out / "plots" / "sequential_knowmem.png",
                                            title=f"{result['method']}: KnowMem after each request",
                                            xlabel="unlearning request", ylabel="KnowMem (ROUGE-L F1 × 100)")
            lines += [f"![KnowMem per request]({path.relative_to(out)})", ""]
    return "\n".join(lines)

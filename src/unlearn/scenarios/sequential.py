"""Sequential unlearning requests (MUSE's "sustainability", SimNPO App. I.4 / Fig. A5), ``unlearn scenario
sequential`` (``unlearn sequential`` is the same): forget ``sust/forget_1``, then ``sust/forget_2`` from the result,
and so on; evaluate after every request.

Each request is an ordinary unlearning run (``OUTPUT/request_1``, …) whose starting model is the previous request's
result, so an NPO reference is the model before *that* request, as in MUSE's scripts. Finished requests are reused
when the command is run again (the configuration must match), so an interrupted sequence resumes. The output is
``sequential.json`` (KnowMem forget / retain, VerbMem and PrivLeak after each request), ``sequential.md`` and a plot.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig
from unlearn.config.parsing import check, setting
from unlearn.errors import ConfigError
from unlearn.experiments.chain import Link, run_chain
from unlearn.experiments.common import Timer, check_evaluation, open_data
from unlearn.experiments.plan import plan_unlearning, with_task_defaults
from unlearn.io import write_json, write_text
from unlearn.rendering import plots
from unlearn.rendering.tables import fmt, md_table
from unlearn.tasks.training_data import TextBenchmark

DEFAULT_REQUESTS = tuple(f"sust/forget_{i}" for i in range(1, 5))
METRICS = (("knowmem_f", "KnowMem forget ↓"), ("knowmem_r", "KnowMem retain ↑"), ("verbmem_f", "VerbMem forget ↓"),
           ("privleak", "PrivLeak (→ 0)"))


@dataclass
class SequentialConfig:
    requests: list[str] = setting(doc="the forget corpora, unlearned in this order (MUSE: sust/forget_1..4)",
                                  factory=lambda: list(DEFAULT_REQUESTS))

    def __post_init__(self) -> None:
        check(bool(self.requests), "requests", "name at least one forget corpus (e.g. sust/forget_1)", self.requests)


def request_config(cfg: RunConfig, split: str, model: str, out: Path) -> RunConfig:
    """Request ``split``'s unlearning run: ``cfg`` from ``model`` (the previous request's result) into ``out``."""
    c = copy.deepcopy(cfg)
    c.data.forget_split = split
    c.model.path = str(model)
    c.output_dir = str(out)
    c.save_model = True
    return c


def run_sequential(cfg: RunConfig, scenario: SequentialConfig, echo=print) -> Path:
    """Unlearn the requests one after another from ``cfg.model``; writes ``sequential.json`` and ``sequential.md``
    (with the KnowMem plot) into ``cfg.output_dir`` and returns it."""
    timer = Timer()
    if not cfg.output_dir:
        raise ConfigError("output_dir is required: the requests' run directories go under it")
    out = Path(cfg.output_dir)
    cfg = with_task_defaults(cfg)  # the requests' common base
    first = plan_unlearning(request_config(cfg, scenario.requests[0], cfg.model.path, out / "request_1"))
    data = open_data(first)  # every request's corpus must exist before the first one trains
    if not isinstance(data, TextBenchmark):
        raise ConfigError(f"sequential requests run on the MUSE-layout tasks (eval.task=muse, muse_news, muse_books); "
                          f"eval.task={cfg.eval.task} is a question/answer benchmark")
    check_evaluation(first)
    requests = scenario.requests
    for split in requests:
        data.data.texts(split, f"request {split}")
    links = [Link(lambda model, i=i, split=split: request_config(cfg, split, model, out / f"request_{i}"),
                  f"[{i}/{len(requests)}] unlearning {split}") for i, split in enumerate(requests, 1)]
    runs = run_chain(cfg.model.path, links, echo)
    rows: list[dict[str, Any]] = []
    for i, (split, run) in enumerate(zip(requests, runs, strict=True), 1):
        metrics = run.read_results().metrics
        rows.append({"request": i, "forget_split": split, "run_dir": str(run.path),
                     **{key: metrics.get(key) for key, _ in METRICS}})
    result = {"method": cfg.method.name, "requests": list(requests), "rows": rows, "seconds": timer.seconds}
    write_json(out / "sequential.json", result)
    write_text(out / "sequential.md", format_sequential(result, out))
    return out


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

"""`unlearn score`: compute TOFU aggregates from an eval log (TOFU's eval_log_aggregated.json format)."""

from __future__ import annotations

import argparse

NAME = "score"
HELP = "compute TOFU aggregates from an eval log (TOFU's eval_log_aggregated.json format)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eval-log", required=True, help="eval_log_aggregated.json, or a run directory")
    p.add_argument("--retain-log", help="the retain model's eval log or run directory (for Forget Quality)")
    p.add_argument("--json", dest="json_out", help="also write the aggregates to this JSON file")


def run(args: argparse.Namespace) -> int:
    from unlearn.io import write_json
    from unlearn.tasks import get_task
    from unlearn.tasks.tofu.evaluate import RetainReference
    from unlearn.tasks.tofu.log import load_eval_log, load_eval_log_texts
    from unlearn.tasks.tofu.metrics import aggregate

    sets = load_eval_log(args.eval_log)
    reference = RetainReference.load(args.retain_log) if args.retain_log else None
    if reference is not None and "forget" in sets:
        texts = load_eval_log_texts(args.eval_log).get("forget")
        prompts, answers = (None, None) if texts is None else ([t[0] for t in texts], [t[2] for t in texts])
        reference.check_log_matches(prompts, answers, len(sets["forget"].gt_loss))
    result = aggregate(sets, None if reference is None else reference.truth_ratios)
    print(get_task("tofu").format_results(result))
    if args.json_out:
        write_json(args.json_out, result)
    return 0

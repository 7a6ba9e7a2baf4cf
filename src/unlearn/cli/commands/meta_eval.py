"""`unlearn meta-eval`: how faithfully each metric separates models that know the forget set from models that do
not, and how robust it is to 4-bit quantization and relearning (OpenUnlearning §4; docs/formulas.md#meta-evaluation).
"""

from __future__ import annotations

import argparse

NAME = "meta-eval"
HELP = ("meta-evaluate metrics over TOFU runs: faithfulness (AUC between models that know the forget set and models "
        "that do not) and robustness to 4-bit quantization and relearning (our attacks)")
EXAMPLE = ("unlearn meta-eval --knows runs/target --not-knows runs/retain --unlearned runs/npo runs/simnpo "
           "--retain runs/retain --output runs/meta_eval")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--knows", nargs="+", required=True, metavar="RUN_DIR", help="runs of models that know the "
                   "forget set (trained on it)")
    p.add_argument("--not-knows", nargs="+", required=True, metavar="RUN_DIR", help="runs of models that never saw "
                   "it (retain models)")
    p.add_argument("--unlearned", nargs="*", default=[], metavar="RUN_DIR", help="unlearned runs (with their models) "
                   "to attack for robustness; none: faithfulness only")
    p.add_argument("--retain", metavar="RUN_DIR", help="the retain model's run (with its model), relearned beside "
                   "each unlearned model")
    p.add_argument("--metrics", metavar="A,B,...", help="forget-set metrics (default: EM, ES, Prob, Para.Prob, "
                   "TR_knowledge, TR, ROUGE)")
    p.add_argument("--relearn", action="append", default=[], metavar="KEY=VALUE", help="a relearn attack setting "
                   "(fraction, seeds, epochs, lr, batch_size, subset; default epochs=1 subset=random), repeatable")
    p.add_argument("--output", metavar="DIR", help="write meta_eval.json and meta_eval.md into DIR")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unlearn.io import write_json, write_text
    from unlearn.meta_eval import meta_eval_table, meta_evaluate, metric_names, pools_from

    metrics = metric_names([m.strip() for m in args.metrics.split(",")] if args.metrics else None)
    result = meta_evaluate(pools_from(args.knows, args.not_knows, args.unlearned, args.retain), metrics,
                           args.relearn)
    table = meta_eval_table(result)
    print(table, end="")
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "meta_eval.json", result)
        write_text(out / "meta_eval.md", table)
    return 0

"""The ``unlearn`` command.

Every command takes ``--config FILE`` (YAML) and ``key=value`` overrides (see ``unlearn.config``); input
errors are reported as one line, before any compute, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from unlearn.errors import UnlearnError

EXAMPLES = {
    "demo": "unlearn demo                      # everything, on the embedded benchmark\n"
            "  unlearn demo unlearn_epochs=3 methods=npo+gd,simnpo+gd",
    "finetune": "unlearn finetune model=DIR data=DATA_DIR data.train_splits=full output_dir=runs/target \\\n"
                "      save_model=true",
    "run": "unlearn run model=runs/target/model data=DATA_DIR method=simnpo+gd data.forget_split=forget10 \\\n"
           "      eval.retain_reference=runs/retain output_dir=runs/simnpo",
    "eval": "unlearn eval model=runs/simnpo/model data=DATA_DIR eval.retain_reference=runs/retain",
}


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="YAML config file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=1e-4")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlearn",
        description="Machine unlearning for LLMs: fine-tune, unlearn (forget objective × regularizer), evaluate.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        epilog = f"example:\n  {EXAMPLES[name]}" if name in EXAMPLES else None
        return sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("demo", "generate the fictitious-authors benchmark, train tiny target + retain models, unlearn with "
                    "every method, evaluate, print the table")
    _add_config_args(p)
    p.add_argument("--fresh", action="store_true", help="delete the output directory first instead of reusing stages")

    p = add("finetune", "fine-tune a model on TOFU splits (full → target model, retainYY → retain model)")
    _add_config_args(p)
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")

    p = add("run", "unlearn with one method and evaluate")
    _add_config_args(p)
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")

    p = add("eval", "evaluate a model with the TOFU metrics")
    _add_config_args(p)

    p = add("score", "compute TOFU aggregates from an eval log (TOFU's eval_log_aggregated.json format)")
    p.add_argument("--eval-log", required=True, help="eval_log_aggregated.json, or a run directory")
    p.add_argument("--retain-log", help="the retain model's eval log or run directory (for Forget Quality)")
    p.add_argument("--json", dest="json_out", help="also write the aggregates to this JSON file")

    p = add("methods", "list forget objectives and regularizers")

    p = add("generate-data", "write the fictitious-authors benchmark (TOFU layout) to a directory")
    p.add_argument("out_dir")
    p.add_argument("--authors", type=int, default=100)
    p.add_argument("--questions", type=int, default=10, help="questions per author (1-10)")
    p.add_argument("--seed", type=int, default=0)
    return parser


def _score(args: argparse.Namespace) -> int:
    from unlearn.evaluation.tofu_eval import RetainReference
    from unlearn.evaluation.tofu_log import load_eval_log
    from unlearn.evaluation.tofu_metrics import aggregate
    from unlearn.io import write_json

    sets = load_eval_log(args.eval_log)
    reference = RetainReference.load(args.retain_log) if args.retain_log else None
    if reference is not None and "forget" in sets:
        n = len(sets["forget"].gt_loss)
        if n != len(reference.truth_ratios):
            raise UnlearnError(f"{args.eval_log} has {n} forget rows but {args.retain_log} has "
                               f"{len(reference.truth_ratios)}: Forget Quality compares the same forget rows")
    result = aggregate(sets, None if reference is None else reference.truth_ratios)
    print(format_aggregates(result))
    if args.json_out:
        write_json(args.json_out, result)
    return 0


def format_aggregates(result: dict) -> str:
    lines = ["| set | ROUGE | Prob | Truth Ratio | n |", "|---|---|---|---|---|"]
    for name, m in result["sets"].items():
        rouge = f"{m['rouge']:.4f}" if "rouge" in m else "n/a"
        lines.append(f"| {name} | {rouge} | {m['prob']:.4f} | {m['truth_ratio']:.4f} | {m['n']} |")
    mu = result.get("model_utility_9")
    fq = result.get("forget_quality")
    lines.append("")
    lines.append(f"Model Utility (9): {mu:.4f}" if mu is not None else "Model Utility (9): n/a (needs retain, "
                 "real_authors and world_facts with ROUGE)")
    lines.append(f"Forget Quality: {fq:.4g}" if fq is not None else "Forget Quality: n/a (needs --retain-log)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except UnlearnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue from the last checkpoint", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "methods":
        from unlearn.objectives.methods import describe_registry

        print(describe_registry())
        return 0
    if args.command == "score":
        return _score(args)
    if args.command == "generate-data":
        from unlearn.data.fictitious import generate_benchmark

        out = generate_benchmark(args.out_dir, args.authors, args.questions, args.seed)
        print(f"wrote the fictitious-authors benchmark to {out}")
        return 0

    from unlearn.config import RunConfig, load_config
    from unlearn.experiments.common import quiet_libraries

    quiet_libraries()
    if args.command == "demo":
        import shutil

        from unlearn.experiments.demo import DemoConfig, run_demo

        demo = load_config(DemoConfig, args.config, args.overrides)
        if args.fresh and Path(demo.output_dir).exists():
            shutil.rmtree(demo.output_dir)
        run_demo(demo)
        return 0
    cfg = load_config(RunConfig, args.config, args.overrides)
    if args.command == "finetune":
        from unlearn.experiments.finetune import run_finetune

        run_dir = run_finetune(cfg, resume=args.resume)
    elif args.command == "run":
        from unlearn.experiments.unlearning import run_unlearning

        run_dir = run_unlearning(cfg, resume=args.resume)
    elif args.command == "eval":
        from unlearn.experiments.evaluate import run_evaluation

        run_dir = run_evaluation(cfg)
    else:  # pragma: no cover - argparse restricts the choices
        raise UnlearnError(f"unknown command {args.command}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if "sets" in metrics:
        print(format_aggregates(metrics))
    print(f"results: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

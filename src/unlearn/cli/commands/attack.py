"""`unlearn attack`: attack a finished run's model: paraphrase (the forget metrics on paraphrased questions), leak
(leak@k: k sampled answers per forget question), relearn (fine-tune on a little forget data), quantize (8/4-bit
weights); results into RUN_DIR/attacks/ and its report."""

from __future__ import annotations

import argparse

from unlearn.cli.options import add_config_args, add_limit_arg, limit_override

NAME = "attack"
HELP = ("attack a finished run's model: paraphrase (the forget metrics on paraphrased questions), leak "
        "(leak@k: k sampled answers per forget question), relearn (fine-tune on a little forget data), "
        "quantize (8/4-bit weights); results into RUN_DIR/attacks/ and its report")
EXAMPLE = ("unlearn attack leak runs/simnpo k=16 temperature=1.0 threshold=0.5\n"
           "  unlearn attack paraphrase runs/simnpo retain_reference=runs/retain\n"
           "  unlearn attack relearn runs/simnpo fraction=0.2 seeds=5 epochs=3\n"
           "  unlearn attack quantize runs/simnpo bits=[8,4]")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("attack", metavar="NAME", help="paraphrase, leak, relearn or quantize")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with its saved model (save_model=true)")
    add_config_args(p)
    add_limit_arg(p)


def run(args: argparse.Namespace) -> int:
    from unlearn.attacks import run_attack
    from unlearn.experiments.common import quiet_libraries
    from unlearn.io import read_json
    from unlearn.reporting.attacks import format_attack
    from unlearn.reporting.report import write_report
    from unlearn.runs import RunDirectory

    quiet_libraries()
    path = run_attack(args.attack, args.run_dir, [*args.overrides, *limit_override(args.limit)], args.config)
    print("\n".join(format_attack(read_json(path))))
    if RunDirectory(args.run_dir).is_complete():
        write_report(args.run_dir)
    print(f"results: {path}")
    return 0

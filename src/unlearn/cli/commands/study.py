"""`unlearn study`: reproduce a controlled study; markov: the SimNPO paper's mixture of Markov chains (§5, App. H), NPO
vs SimNPO, trajectories as JSON + the paper's Fig. 5 as PNG."""

from __future__ import annotations

import argparse

from unlearn.cli.options import add_config_args

NAME = "study"
HELP = ("reproduce a controlled study; markov: the SimNPO paper's mixture of Markov chains (§5, App. H), NPO "
        "vs SimNPO, trajectories as JSON + the paper's Fig. 5 as PNG")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("example:\n  unlearn study markov --all --seeds 3 --output-dir runs/markov\n"
                "  unlearn study markov --experiment 1 beta_grid.npo=0.1,0.2,0.5 beta_grid.simnpo=2,4,8\n"
                "  unlearn study markov --experiment 2 iterations=100 unlearn_lr=1e-4")
    p.add_argument("study", help="which study (markov); an unknown name is one line with the closest ones")
    add_config_args(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--experiment", type=int, metavar="{1,2}",
                       help="1: Forget2 sequences of length 5 (short vs long); 2: Forget2 left out of pretraining")
    which.add_argument("--all", action="store_true", help="run experiments 1 and 2 (and the combined figure)")
    p.add_argument("--seeds", type=int, help="number of seeds 0..N-1 (default 3; the key `seeds`)")
    p.add_argument("--iterations", type=int, help="unlearning iterations (default 50; the key `iterations`)")
    p.add_argument("--beta-grid", nargs="?", const="default", default=None, metavar="GRID",
                   help="grid-search β: no value = the default grid; '0.1,1,4' = the same values for both methods; "
                        "per method write beta_grid.npo=0.1,0.2 beta_grid.simnpo=2,4 (the key `beta_grid`)")
    p.add_argument("--retain-weight", type=float, help="weight of a GD retain term (default 0, the paper; the key "
                   "`retain_weight`)")
    p.add_argument("--eval-sequences", type=int, help="test sequences per set scored after every iteration "
                   "(0 = all; default 500)")
    p.add_argument("--output-dir", help="where JSON, PNG and cached models go (default runs/markov)")


def run(args: argparse.Namespace) -> int:
    from unlearn.experiments.common import quiet_libraries
    from unlearn.studies import STUDIES

    config_from_args, run_study, summarize = STUDIES.get_entry(args.study).load()
    cfg = config_from_args(args)
    quiet_libraries()
    results = run_study(cfg)
    print(summarize(results))
    print(f"results: {cfg.output_dir} (total wall time {results['wall_time_s']} s)")
    return 0

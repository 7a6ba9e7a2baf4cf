"""`unlearn scenario`: run a scenario built from the finetune / unlearn / evaluate stages; continual: the forget file's
tasks (task_id) one after another, each from the previous model, MU and FE per task (closer-look §5.2)."""

from __future__ import annotations

import argparse

from unlearn.cli.options import add_config_args

NAME = "scenario"
HELP = ("run a scenario built from the finetune / unlearn / evaluate stages; continual: the forget file's "
        "tasks (task_id) one after another, each from the previous model, MU and FE per task (closer-look "
        "§5.2)")
EXAMPLE = ("unlearn scenario continual model=runs/target/model data=DATA/tofu_continual \\\n"
           "      data.forget_split=forget01 methods=[npo+gd,me+gd,idk+ap] output_dir=runs/continual01\n"
           "  unlearn scenario real_world model=HuggingFaceTB/SmolLM2-135M-Instruct data=DATA/real_world \\\n"
           "      eval.lm_eval=[mmlu,arc_challenge] output_dir=runs/real_world")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", metavar="NAME",
                   help="continual (closer-look §5.2), real_world (closer-look §5.3: forget real people with the "
                        "model's own answers, utility on other people), memorization (SimNPO App. C: FQ on the "
                        "memorized and the never-trained half of the forget split), divergence (SimNPO App. G: KL "
                        "from the original model per step) or ref_perturbation (App. B: NPO with a plain and a "
                        "perturbed reference)")
    add_config_args(p)


def run(args: argparse.Namespace) -> int:
    from unlearn.config import RunConfig, load_config
    from unlearn.config.parsing import partition_overrides, read_yaml
    from unlearn.experiments.common import quiet_libraries
    from unlearn.scenarios import SCENARIOS, load_scenario, run_scenario

    quiet_libraries()
    config_class, _ = load_scenario(args.scenario)
    result_file = SCENARIOS.canonical(args.scenario)
    keys = frozenset(config_class.__dataclass_fields__)
    values = read_yaml(args.config) if args.config else {}
    scenario_overrides, run_overrides = partition_overrides(args.overrides, keys)
    scenario = load_config(config_class, None, scenario_overrides,
                           base={k: v for k, v in values.items() if k in keys})
    cfg = load_config(RunConfig, None, run_overrides, base={k: v for k, v in values.items() if k not in keys})
    out = run_scenario(args.scenario, cfg, scenario)
    print((out / f"{result_file}.md").read_text(encoding="utf-8"))
    print(f"results: {out / (result_file + '.json')}, {out / (result_file + '.md')}")
    return 0

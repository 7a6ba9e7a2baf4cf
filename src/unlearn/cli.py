"""The ``unlearn`` command: a table of subcommands, each a small function.

Every command that runs something takes ``--config FILE`` (YAML) and ``key=value`` overrides (one syntax
everywhere, see :mod:`unlearn.config.parsing`); input errors are reported as one line, before any compute, with exit
status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from unlearn.errors import UnlearnError
from unlearn.runs import RunDirectory

EXAMPLES = {
    "demo": "unlearn demo                      # everything, on the embedded benchmark\n"
            "  unlearn demo unlearn_epochs=3 methods=npo+gd,simnpo+gd\n"
            "  unlearn demo benchmark=muse            # the MUSE path on the embedded fictitious news\n"
            "  unlearn demo benchmark=wmdp            # the WMDP path: RMU, NPO+GD, SimNPO+GD, multiple choice",
    "finetune": "unlearn finetune model=DIR data=DATA_DIR data.train_splits=full output_dir=runs/target \\\n"
                "      save_model=true",
    "run": "unlearn run model=runs/target/model data=DATA_DIR method=simnpo+gd data.forget_split=forget10 \\\n"
           "      eval.retain_reference=runs/retain output_dir=runs/simnpo",
    "eval": "unlearn eval model=runs/simnpo/model data=DATA_DIR eval.retain_reference=runs/retain   # task=tofu",
    "scenario": "unlearn scenario continual model=runs/target/model data=DATA/tofu_continual \\\n"
                "      data.forget_split=forget01 methods=[npo+gd,me+gd,idk+ap] output_dir=runs/continual01\n"
                "  unlearn scenario real_world model=HuggingFaceTB/SmolLM2-135M-Instruct data=DATA/real_world \\\n"
                "      eval.lm_eval=[mmlu,arc_challenge] output_dir=runs/real_world",
    "sweep": "unlearn sweep -c base.yaml method=npo+gd,simnpo+gd train.lr=1e-5,2e-5 npo+gd:forget.beta=0.05,0.1 \\\n"
             "      simnpo+gd:forget.beta=2.5,3.5 train.eval_every_epoch=true sweep.jobs=2 output_dir=runs/sweep1",
    "attack": "unlearn attack leak runs/simnpo k=16 temperature=1.0 threshold=0.5\n"
              "  unlearn attack paraphrase runs/simnpo retain_reference=runs/retain\n"
              "  unlearn attack relearn runs/simnpo fraction=0.2 seeds=5 epochs=3\n"
              "  unlearn attack quantize runs/simnpo bits=[8,4]",
}


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="YAML config file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=1e-4")


def _add_strict_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true", help="duplicate questions and forget rows inside the retain "
                   "split are errors, not warnings (data.strict=true)")


def _add_run_dir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint (the "
                   "configuration must be the one it was written with)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in output_dir (its files are "
                   "removed first); without it such a directory is refused")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlearn",
        epilog="Plugins (docs/extending.md): --plugin MODULE_OR_FILE (repeatable, anywhere on the line) or "
               "plugins=[a,b] load code that registers methods, tasks, attacks or scenarios; installed plugins "
               "(entry points) load by themselves.",
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
    p.add_argument("--fresh", action="store_true", help="start over: remove what an earlier demo wrote into "
                   "output_dir (only a directory a demo made) instead of reusing its stages")

    p = add("finetune", "fine-tune a model on a benchmark's training data: TOFU splits (full → target model, retainYY "
                        "→ retain model) or MUSE text corpora (task=muse_news: forget + retain → target)")
    _add_config_args(p)
    _add_run_dir_args(p)
    _add_strict_arg(p)

    p = add("run", "unlearn with one method and evaluate")
    _add_config_args(p)
    _add_run_dir_args(p)
    _add_strict_arg(p)

    p = add("eval", "evaluate a model with an evaluation task (task=tofu: the TOFU and closer-look metrics)")
    _add_config_args(p)
    p.add_argument("--from-generations", metavar="RUN_DIR",
                   help="rescore the saved generations of RUN_DIR (no model needed; e.g. a GPU run on a CPU)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in output_dir (its files are "
                   "removed first)")

    p = add("score", "compute TOFU aggregates from an eval log (TOFU's eval_log_aggregated.json format)")
    p.add_argument("--eval-log", required=True, help="eval_log_aggregated.json, or a run directory")
    p.add_argument("--retain-log", help="the retain model's eval log or run directory (for Forget Quality)")
    p.add_argument("--json", dest="json_out", help="also write the aggregates to this JSON file")

    p = add("tofu-subset", "write a smaller TOFU (first N authors, the last K of them forgotten) for CPU-sized runs")
    p.add_argument("src", help="a TOFU release directory (full.json, retain_perturbed.json, ...)")
    p.add_argument("out_dir")
    p.add_argument("--authors", type=int, default=20, help="authors kept (at most 20: paraphrases exist for those)")
    p.add_argument("--forget-authors", type=int, default=2, help="last authors that form the forget split")

    p = add("methods", "list forget objectives, regularizers, weight-edit methods and recipes")

    p = add("tasks", "list the evaluation tasks: their sets, requests, metrics and dependencies")

    p = add("sequential", "unlearn a sequence of forget requests, each from the previous result (MUSE "
                          "sustainability; default requests sust/forget_1..4), with KnowMem after each")
    _add_config_args(p)
    p.add_argument("--requests", help="comma-separated forget corpora (default: sust/forget_1,…,sust/forget_4)")

    p = add("generate-data", "write an embedded benchmark to a directory: fictitious authors (TOFU layout) or "
                             "fictitious news (--news, MUSE layout)")
    p.add_argument("out_dir")
    p.add_argument("--news", action="store_true", help="the fictitious-news benchmark (MUSE layout)")
    p.add_argument("--articles", type=int, default=20, help="--news: forget, retain and holdout articles each")
    p.add_argument("--authors", type=int, default=100)
    p.add_argument("--questions", type=int, default=10, help="questions per author (1-10)")
    p.add_argument("--seed", type=int, default=0)

    p = add("study", "reproduce a controlled study; markov: the SimNPO paper's mixture of Markov chains (§5, "
                     "App. H), NPO vs SimNPO, trajectories as JSON + the paper's Fig. 5 as PNG")
    p.epilog = ("example:\n  unlearn study markov --all --seeds 3 --output-dir runs/markov\n"
                "  unlearn study markov --experiment 1 beta_grid.npo=0.1,0.2,0.5 beta_grid.simnpo=2,4,8\n"
                "  unlearn study markov --experiment 2 iterations=100 unlearn_lr=1e-4")
    p.add_argument("study", choices=["markov"], help="which study (markov)")
    _add_config_args(p)
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

    p = add("report", f"write {RunDirectory.REPORT} (metric tables, PNG plots, example generations) for each run "
                      "directory")
    p.epilog = "example:\n  unlearn report runs/npo runs/simnpo"
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help=f"run directory with {RunDirectory.METRICS}")
    p.add_argument("--examples", type=int, default=5, help="example generations per set (default 5)")

    p = add("attack", "attack a finished run's model: paraphrase (the forget metrics on paraphrased questions), "
                      "leak (leak@k: k sampled answers per forget question), relearn (fine-tune on a little forget "
                      "data), quantize (8/4-bit weights); results into RUN_DIR/attacks/ and its report")
    p.add_argument("attack", metavar="NAME", help="paraphrase, leak, relearn or quantize")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with its saved model (save_model=true)")
    _add_config_args(p)

    p = add("scenario", "run a scenario built from the finetune / unlearn / evaluate stages; continual: the forget "
                        "file's tasks (task_id) one after another, each from the previous model, MU and FE per task "
                        "(closer-look §5.2)")
    p.add_argument("scenario", metavar="NAME",
                   help="continual (closer-look §5.2), real_world (closer-look §5.3: forget real people with the "
                        "model's own answers, utility on other people), memorization (SimNPO App. C: FQ on the "
                        "memorized and the never-trained half of the forget split), divergence (SimNPO App. G: KL "
                        "from the original model per step) or ref_perturbation (App. B: NPO with a plain and a "
                        "perturbed reference)")
    _add_config_args(p)

    p = add("sweep", "run a grid of unlearning runs (key=v1,v2 axes, METHOD:key=… per-method axes), resumable; "
                     "the forgetting–utility front, the best run per method under a utility floor, and a report")
    p.add_argument("--yes", action="store_true", help="run more than sweep.max_runs runs")
    p.add_argument("--overwrite", action="store_true", help="replace grid runs whose directories hold a finished "
                   "run of another configuration (an earlier sweep into this output_dir); without it they are refused")
    _add_config_args(p)

    p = add("compare", "print one markdown table across runs (methods as rows): FQ, MU-9, MU-18, FE, forget and "
                       "retain metrics")
    p.epilog = ("example:\n  unlearn compare runs/target runs/retain runs/npo runs/simnpo --output compare.md "
                "--plots-dir runs/compare")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help=f"run directories with {RunDirectory.METRICS}")
    p.add_argument("--output", metavar="FILE", help="also write the markdown to FILE")
    p.add_argument("--plots-dir", metavar="DIR", help="draw the multi-run plots (FE vs MU trajectories, NPO vs "
                   "SimNPO gradient weights) into DIR and link them")
    p.add_argument("--names", metavar="A,B,...", help="row names, comma-separated, one per RUN_DIR "
                   "(default: the method name, else the directory name)")
    p.add_argument("--examples", type=int, default=3, help="forget questions with every run's generation side by "
                   "side (default 3; 0 = none)")
    return parser


def _score(args: argparse.Namespace) -> int:
    from unlearn.evaluation.tasks import get_task
    from unlearn.evaluation.tofu_eval import RetainReference
    from unlearn.evaluation.tofu_log import load_eval_log, load_eval_log_texts
    from unlearn.evaluation.tofu_metrics import aggregate
    from unlearn.io import write_json

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


def _methods(args: argparse.Namespace) -> int:
    from unlearn.objectives.methods import describe_registry

    print(describe_registry())
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from unlearn.evaluation.tasks import describe_tasks

    print(describe_tasks())
    return 0


def _tofu_subset(args: argparse.Namespace) -> int:
    from unlearn.data.tofu_subset import make_subset

    out, forget = make_subset(args.src, args.out_dir, args.authors, args.forget_authors)
    print(f"wrote a {args.authors}-author TOFU subset to {out}; forget split: {forget}")
    return 0


def _generate_data(args: argparse.Namespace) -> int:
    if args.news:
        from unlearn.data.fictitious_news import generate_news_benchmark

        out = generate_news_benchmark(args.out_dir, args.articles, args.articles, args.articles, args.seed)
        print(f"wrote the fictitious-news benchmark (MUSE layout) to {out}")
        return 0
    from unlearn.data.fictitious import generate_benchmark

    out = generate_benchmark(args.out_dir, args.authors, args.questions, args.seed)
    print(f"wrote the fictitious-authors benchmark to {out}")
    return 0


def _sequential(args: argparse.Namespace) -> int:
    from unlearn.config import RunConfig, load_config
    from unlearn.experiments.common import quiet_libraries
    from unlearn.experiments.sequential import DEFAULT_REQUESTS, format_sequential, run_sequential

    quiet_libraries()
    cfg = load_config(RunConfig, args.config, args.overrides)
    requests = [r.strip() for r in args.requests.split(",") if r.strip()] if args.requests else DEFAULT_REQUESTS
    result = run_sequential(cfg, requests)
    print(format_sequential(result))
    print(f"results: {cfg.output_dir}/sequential.json, sequential.md")
    return 0


def _report(args: argparse.Namespace) -> int:
    from unlearn.reporting.report import load_run, write_report

    for run_dir in args.run_dirs:  # every path checked before any report is written
        load_run(run_dir)
    for run_dir in args.run_dirs:
        print(write_report(run_dir, examples=max(args.examples, 0)))
    return 0


def _attack(args: argparse.Namespace) -> int:
    from unlearn.attacks import run_attack
    from unlearn.attacks.report import format_attack
    from unlearn.experiments.common import quiet_libraries
    from unlearn.io import read_json
    from unlearn.reporting.report import write_report
    from unlearn.runs import RunDirectory

    quiet_libraries()
    path = run_attack(args.attack, args.run_dir, args.overrides, args.config)
    print("\n".join(format_attack(read_json(path))))
    if RunDirectory(args.run_dir).is_complete():
        write_report(args.run_dir)
    print(f"results: {path}")
    return 0


def _scenario(args: argparse.Namespace) -> int:
    from unlearn.config import RunConfig, load_config
    from unlearn.config.parsing import partition_overrides, read_yaml
    from unlearn.experiments.common import quiet_libraries
    from unlearn.scenarios import SCENARIOS, load_scenario

    quiet_libraries()
    config_class, run_scenario = load_scenario(args.scenario)
    result_file = SCENARIOS.canonical(args.scenario)
    keys = frozenset(config_class.__dataclass_fields__)
    values = read_yaml(args.config) if args.config else {}
    scenario_overrides, run_overrides = partition_overrides(args.overrides, keys)
    scenario = load_config(config_class, None, scenario_overrides,
                           base={k: v for k, v in values.items() if k in keys})
    cfg = load_config(RunConfig, None, run_overrides, base={k: v for k, v in values.items() if k not in keys})
    out = run_scenario(cfg, scenario)
    print((out / f"{result_file}.md").read_text(encoding="utf-8"))
    print(f"results: {out / (result_file + '.json')}, {out / (result_file + '.md')}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unlearn.config.parsing import load_config, read_yaml
    from unlearn.experiments.common import quiet_libraries
    from unlearn.sweeps.config import SweepConfig
    from unlearn.sweeps.run import run_sweep

    quiet_libraries()
    base = read_yaml(args.config) if args.config else {}
    settings = [o.removeprefix("sweep.") for o in args.overrides if o.startswith("sweep.")]
    out_items = [o for o in args.overrides if o.partition("=")[0].strip() == "output_dir"]
    grid = [o for o in args.overrides if not o.startswith("sweep.") and o not in out_items]
    sweep = load_config(SweepConfig, None, settings, base=base.pop("sweep", None) or {})
    out = Path(out_items[-1].partition("=")[2].strip() if out_items else base.pop("output_dir", None) or "runs/sweep")
    out = run_sweep(base, grid, sweep, out, yes=args.yes, overwrite=args.overwrite)
    print((out / f"{sweep.name}.md").read_text(encoding="utf-8"))
    print(f"results: {out / f'{sweep.name}.json'}, {out / f'{sweep.name}.md'}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from unlearn.reporting.report import write_comparison

    names = [n.strip() for n in args.names.split(",")] if args.names else None
    print(write_comparison(args.run_dirs, output_path=args.output, names=names, plots_dir=args.plots_dir,
                           examples=args.examples), end="")
    return 0


def _study(args: argparse.Namespace) -> int:
    from unlearn.experiments.common import quiet_libraries
    from unlearn.studies.markov import config_from_args, format_summary, run_markov_study

    cfg = config_from_args(args)
    quiet_libraries()
    results = run_markov_study(cfg)
    print(format_summary(results))
    print(f"results: {cfg.output_dir} (total wall time {results['wall_time_s']} s)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unlearn.config import load_config
    from unlearn.experiments.common import quiet_libraries
    from unlearn.experiments.demo import DemoConfig, clear_demo_output, run_demo
    from unlearn.experiments.demo_muse import MuseDemoConfig, run_muse_demo
    from unlearn.experiments.demo_wmdp import WmdpDemoConfig, run_wmdp_demo

    quiet_libraries()
    benchmark = _demo_benchmark(args.config, args.overrides)
    demos = {"muse": (MuseDemoConfig, run_muse_demo), "wmdp": (WmdpDemoConfig, run_wmdp_demo)}
    config_class, run = demos.get(benchmark, (DemoConfig, run_demo))
    demo = load_config(config_class, args.config, args.overrides)  # every key checked before anything is deleted
    if args.fresh:
        clear_demo_output(Path(demo.output_dir))
    run(demo)
    return 0


def _demo_benchmark(config: str | None, overrides: list[str]) -> str:
    """Which demo: ``benchmark=…`` on the command line, else in the config file, else ``tofu``."""
    for item in reversed(overrides):
        key, _, value = item.partition("=")
        if key.strip() == "benchmark":
            return value.strip()
    if config:
        from unlearn.config.parsing import read_yaml

        values = read_yaml(config)
        if "benchmark" in values:
            return str(values["benchmark"])
    return "tofu"


def _pipeline(run: Callable) -> Callable[[argparse.Namespace], int]:
    """A command that builds a RunConfig, runs one pipeline, and prints the task's summary of the results."""

    def command(args: argparse.Namespace) -> int:
        from unlearn.config import RunConfig, load_config
        from unlearn.evaluation.tasks import get_task
        from unlearn.experiments.common import quiet_libraries
        from unlearn.runs import RunDirectory

        quiet_libraries()
        cfg = load_config(RunConfig, args.config, args.overrides)
        if getattr(args, "strict", False):
            cfg.data.strict = True
        run_dir = RunDirectory(run(cfg, args))
        results = run_dir.read_results()
        if results.metrics:
            print(get_task(results.task).format_results(results.metrics))
        print(f"results: {run_dir.path}")
        return 0

    return command


def _finetune(cfg, args) -> object:
    from unlearn.experiments.finetune import run_finetune

    return run_finetune(cfg, resume=args.resume, overwrite=args.overwrite)


def _run(cfg, args) -> object:
    from unlearn.experiments.unlearning import run_unlearning

    return run_unlearning(cfg, resume=args.resume, overwrite=args.overwrite)


def _eval(cfg, args) -> object:
    from unlearn.experiments.evaluate import run_evaluation

    if args.from_generations:
        cfg.eval.from_generations = args.from_generations
    return run_evaluation(cfg, overwrite=args.overwrite)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _demo, "finetune": _pipeline(_finetune), "run": _pipeline(_run), "eval": _pipeline(_eval),
    "score": _score, "tofu-subset": _tofu_subset, "methods": _methods, "tasks": _tasks,
    "generate-data": _generate_data, "sequential": _sequential, "study": _study, "report": _report, "compare": _compare,
    "attack": _attack, "scenario": _scenario, "sweep": _sweep,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Like ``parse_args``, but ``key=value`` overrides may also come after flags (``study markov --all seeds=5``)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [x for x in extra if "=" not in x or x.startswith("-")]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def split_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the plugin specs of ``--plugin X`` / ``--plugin=X`` / ``plugins=[a,b]``, the other arguments): plugins load
    before the command line is parsed, so that their names are known everywhere."""
    specs, rest, i = [], [], 0
    while i < len(argv):
        item = argv[i]
        if item == "--plugin":
            if i + 1 >= len(argv):
                raise UnlearnError("--plugin needs a module name or a .py file")
            specs.append(argv[i + 1])
            i += 2
            continue
        if item.startswith("--plugin="):
            specs.append(item.partition("=")[2])
        elif item.partition("=")[0].strip() == "plugins" and "=" in item:
            value = item.partition("=")[2].strip()
            value = value[1:-1] if value.startswith("[") and value.endswith("]") else value
            specs += [v.strip().strip("'\"") for v in value.split(",") if v.strip()]
        else:
            rest.append(item)
        i += 1
    return specs, rest


def main(argv: list[str] | None = None) -> int:
    from unlearn.plugins import load_plugins

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        specs, argv = split_plugins(argv)
        load_plugins(specs)
    except UnlearnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args = parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UnlearnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue from the last checkpoint", file=sys.stderr)
        return 130
    finally:
        _end_process_group()


def _end_process_group() -> None:
    """Under `accelerate launch`, leave the process group once the command is done (torch warns otherwise)."""
    if "torch.distributed" not in sys.modules:  # nothing launched one (and no need to import torch for it)
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())

"""The memorization scenario (SimNPO App. C) and the perturbed-reference study (SimNPO App. B) on the embedded demo,
with the demo's own settings.

Usage:  python benchmarks/scenarios/run.py [--demo-dir runs/attacks-demo] [--only memorization,ref_perturbation]
        [--record]

memorization: the target is fine-tuned from the demo's random-init base model on retain90 ∪ the first half of
forget10 (plus real_authors and world_facts, as the demo's target) with the demo's fine-tuning settings; NPO+GD and
SimNPO+GD unlearn all of forget10 with the demo's unlearning settings; FQ per half against the demo's retain model.

divergence: GA, NPO and SimNPO (forget objectives alone) from the demo's target with its unlearning settings, the
KL from the target on the first 32 forget rows after every step (SimNPO Fig. A4).

ref_perturbation: NPO+GD from the demo's target with the demo's settings, plain and with the reference replaced by
(θ_ref + θ_rand)/2 for θ_rand ~ N(0, 1) (`gaussian`) and θ_rand = a fresh initialisation (`init`).

With --record, writes the tables (and the commands, device, date and wall times) to benchmarks/scenarios/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from demo_time import machine, timed_cli  # noqa: E402


def _common(config: dict, demo: Path) -> list[str]:
    return [f"data={demo / 'data'}", "model.template=qa", "data.max_length=128", "eval.max_length=96",
            f"eval.batch_size={config['eval_batch_size']}", f"data.forget_split={config['forget_split']}",
            "progress=false", f"train.seed={config['seed']}"]


def _unlearning(config: dict) -> list[str]:
    return [f"train.epochs={config['unlearn_epochs']}", f"train.lr={config['unlearn_lr']}",
            f"train.batch_size={config['unlearn_batch_size']}", f"train.grad_accum={config['unlearn_grad_accum']}"]


def memorization(demo: Path, config: dict, out: Path) -> tuple[list[str], list[str], float]:
    command = ["scenario", "memorization", f"model={demo / 'base_model'}", *_common(config, demo),
               *_unlearning(config), "methods=[npo+gd,simnpo+gd]", f"finetune_epochs={config['finetune_epochs']}",
               f"finetune_lr={config['finetune_lr']}", f"finetune_batch_size={config['finetune_batch_size']}",
               "extra_train_splits=[real_authors,world_facts]", f"eval.retain_reference={demo / 'retain'}",
               f"output_dir={out}"]
    seconds = timed_cli(command)
    return command, (out / "memorization.md").read_text().splitlines(), seconds


def ref_perturbation(demo: Path, config: dict, out: Path) -> tuple[list[str], list[str], float]:
    rows, commands, total = [], [], 0.0
    for kind in ("none", "gaussian", "init"):
        run = out / kind
        command = ["run", f"model={demo / 'target' / 'model'}", *_common(config, demo), *_unlearning(config),
                   "method=npo+gd", f"eval.retain_reference={demo / 'retain'}", f"output_dir={run}",
                   *([f"method.reference_perturbation={kind}"] if kind != "none" else [])]
        if not (run / "metrics.json").is_file():
            total += timed_cli(command)
        commands.append("unlearn " + " ".join(command))
        m = json.loads((run / "metrics.json").read_text())
        forget = m["sets"]["forget"]
        rows.append(f"| NPO+GD, reference {'plain' if kind == 'none' else f'perturbed ({kind})'} | "
                    f"{m['forget_quality']:.3g} | {m['model_utility_9']:.3f} | {forget['rouge']:.3f} | "
                    f"{forget['prob']:.3f} | {forget['truth_ratio']:.3f} |")
    table = ["| model | FQ | MU | forget ROUGE | forget Prob | forget TR |", "|---|---|---|---|---|---|", *rows, ""]
    return commands, table, total


def divergence(demo: Path, config: dict, out: Path) -> tuple[list[str], list[str], float]:
    command = ["scenario", "divergence", f"model={demo / 'target' / 'model'}", *_common(config, demo),
               *_unlearning(config), "methods=[ga,npo,simnpo]", "rows=32", "eval.enabled=false",
               f"output_dir={out}"]
    seconds = timed_cli(command)
    table = (out / "divergence.md").read_text().splitlines()
    return command, [line.replace("plots/divergence.png", "divergence.png") for line in table], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-dir", default="runs/attacks-demo")
    parser.add_argument("--only", default="memorization,ref_perturbation,divergence")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    demo = Path(args.demo_dir)
    config = json.loads((demo / "summary.json").read_text())["config"]
    for name in args.only.split(","):
        out = Path(f"runs/scenario-{name}")
        runner = {"memorization": memorization, "ref_perturbation": ref_perturbation, "divergence": divergence}[name]
        command, table, seconds = runner(demo, config, out)
        print("\n".join(table))
        if args.record:
            commands = command if name == "ref_perturbation" else ["unlearn " + " ".join(command)]
            text = [f"# {name} on the embedded demo", "", f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}. "
                    f"Wall time: {seconds:.0f} s (finished stages are reused).", "", "Commands:", "", "```bash",
                    *commands, "```", "", *table]
            (HERE / f"{name}.md").write_text("\n".join(text) + "\n")
            if name == "memorization":
                shutil.copy(out / "memorization.json", HERE / "memorization.json")
            if name == "divergence":
                shutil.copy(out / "plots" / "divergence.png", HERE / "divergence.png")
                shutil.copy(out / "divergence.json", HERE / "divergence.json")


if __name__ == "__main__":
    main()

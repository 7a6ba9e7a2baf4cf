"""Continual unlearning (closer-look §5.2) on the embedded demo's target model, with the demo's unlearning settings.

Usage:  python benchmarks/scenarios/run_continual.py [--demo-dir runs/attacks-demo] [--split forget01]
        [--methods ga+gd,npo+gd,…] [--tasks N] [--record] [scenario or run key=value …]

The demo's target (``DEMO/target/model``) was fine-tuned on the fictitious authors of seed 0; ``unlearn
generate-data`` with the same seed writes the same benchmark plus its ``continual/`` layout, which this script uses
(forget01 and forget05: 10 tasks, forget10: 9). Each task is an ordinary ``unlearn run`` with the demo's epochs, lr,
batch and evaluation settings; finished tasks are reused. With --record, copies continual.md, continual.json and the
plots into ``benchmarks/scenarios/continual_<split>/`` with the command, device, date and wall time.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from demo_inputs import demo_settings, regenerated_data, unlearning_args  # noqa: E402
from demo_time import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-dir", default="runs/attacks-demo")
    parser.add_argument("--split", default="forget01")
    parser.add_argument("--methods", default="ga+gd,npo+gd,simnpo+gd,idk+gd,dpo+gd,me+gd,idk+ap")
    parser.add_argument("--tasks", type=int)
    parser.add_argument("--output-dir")
    parser.add_argument("--record", action="store_true")
    args, extra = parser.parse_known_args()
    from unlearn.cli import main as cli

    demo = Path(args.demo_dir)
    config = demo_settings(demo)
    data = regenerated_data(demo, config, Path(f"runs/continual-data-seed{config['seed']}"), "continual")
    out = Path(args.output_dir or f"runs/continual-{args.split}")
    command = ["scenario", "continual", f"model={demo / 'target' / 'model'}", f"data={data / 'continual'}",
               f"data.forget_split={args.split}", f"methods=[{args.methods}]", *unlearning_args(config),
               f"output_dir={out}", *([f"tasks={args.tasks}"] if args.tasks else []), *extra]
    start = time.perf_counter()
    if cli(command) != 0:
        raise SystemExit("the scenario failed")
    wall = time.perf_counter() - start
    if args.record:
        dest = HERE / f"continual_{args.split}"
        dest.mkdir(exist_ok=True)
        for name in ("continual.md", "continual.json"):
            shutil.copy(out / name, dest / name)
        for png in (out / "plots").glob("*.png"):
            (dest / "plots").mkdir(exist_ok=True)
            shutil.copy(png, dest / "plots" / png.name)
        (dest / "RUN.md").write_text(
            f"Command: `python benchmarks/scenarios/run_continual.py --split {args.split} --methods {args.methods}"
            + (f" --tasks {args.tasks}" if args.tasks else "") + " --record`\n\n"
            f"i.e. `unlearn {' '.join(command)}`\n\nMachine: {machine()}. Date: {time.strftime('%Y-%m-%d')}. "
            f"Wall time: {wall:.0f} s (tasks already finished are reused, so a rerun is faster).\n")
    print(f"wall time {wall:.0f} s")


if __name__ == "__main__":
    main()

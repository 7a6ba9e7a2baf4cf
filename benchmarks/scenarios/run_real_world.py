"""Real-world unlearning (closer-look §5.3) on the embedded demo's target model, with the demo's unlearning settings.

Usage:  python benchmarks/scenarios/run_real_world.py [--demo-dir runs/attacks-demo] [--methods ga+gd,…] [--record]
        [scenario or run key=value …]

``unlearn generate-data`` with the demo's seed writes the demo's benchmark (checked byte for byte against the demo's
``full.json``, so the target knows every author) plus its ``real_world/`` layout: the forget10 authors to forget,
the block of authors before them to regularize on, the first authors for utility, and a four-option world-facts
task for lm-evaluation-harness (general capability). The targets are the target model's own greedy answers
(``targets=generate``); every method unlearns with the demo's epochs, lr and batch, evaluated after every epoch.
With --record, copies real_world.md, real_world.json and the plot into ``benchmarks/scenarios/real_world/`` with the
command, device, date and wall time.
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
    parser.add_argument("--methods", default="ga+gd,npo+gd,simnpo+gd,idk+gd,dpo+gd,me+gd,idk+ap")
    parser.add_argument("--output-dir", default="runs/real-world")
    parser.add_argument("--record", action="store_true")
    args, extra = parser.parse_known_args()
    from unlearn.cli import main as cli

    demo = Path(args.demo_dir)
    config = demo_settings(demo)
    data = regenerated_data(demo, config, Path(f"runs/real-world-data-seed{config['seed']}"), "real_world")
    out = Path(args.output_dir)
    general = data / "real_world" / "general" / "fictitious_world_facts.yaml"
    command = ["scenario", "real_world", f"model={demo / 'target' / 'model'}", f"data={data / 'real_world'}",
               f"methods=[{args.methods}]", f"eval.lm_eval=[{general}]", *unlearning_args(config),
               "train.eval_every_epoch=true", f"output_dir={out}", *extra]
    start = time.perf_counter()
    if cli(command) != 0:
        raise SystemExit("the scenario failed")
    wall = time.perf_counter() - start
    if args.record:
        dest = HERE / "real_world"
        (dest / "plots").mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "real_world.json", dest / "real_world.json")
        shutil.copy(out / "plots" / "real_world_fe_mu.png", dest / "plots" / "real_world_fe_mu.png")
        body = (out / "real_world.md").read_text()
        head = [f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}. Wall time: {wall:.0f} s (finished stages "
                "are reused).", "", "Command:", "", "```bash",
                f"python benchmarks/scenarios/run_real_world.py --record {' '.join(extra)}".strip(),
                "# = unlearn " + " ".join(command), "```", ""]
        title, _, rest = body.partition("\n")
        (dest / "real_world.md").write_text("\n".join([title, "", *head]) + rest)


if __name__ == "__main__":
    main()

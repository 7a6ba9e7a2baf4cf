"""Every `unlearn attack` on the embedded demo's models: the target and each method `unlearn demo` runs.

Usage:  python benchmarks/attacks/run.py [--demo-dir runs/attacks-demo] [--attacks leak,paraphrase,relearn,quantize]
        [--force] [--record]

1. `unlearn demo output_dir=DIR save_models=true` (its finished stages are reused);
2. per model, each attack with its defaults (leak: k 16, T 1, τ 0.5; quantize: 8 and 4 bits; paraphrase: FQ against
   the demo's retain model), except relearn's learning rate and batch, which are the demo's fine-tuning ones (3e-3,
   a rate at which 3 epochs on 20 rows can teach this tiny model anything; TOFU's 1e-5 is for 7B models);
   relearn runs on the unlearned models, and on the target as their shared baseline;
3. tables, the leak@j curves and the relearning curves of SimNPO+GD against NPO+GD (SimNPO Fig. 6's claim), with
   the wall time of every command. An attack whose results exist is skipped (resumable) unless --force.
With --record, writes RESULTS.md's tables (tables.md), results.json and the plots next to this file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from demo_time import machine, timed_cli  # noqa: E402

ATTACKS = ("leak", "paraphrase", "relearn", "quantize")
RELEARN = ["lr=3e-3", "batch_size=8"]


def models(demo: Path) -> dict[str, Path]:
    config = json.loads((demo / "summary.json").read_text())["config"]
    out = {"target": demo / "target"}
    out.update({m: demo / "methods" / m.replace("+", "_") for m in config["methods"]})
    return out


def attack_all(demo: Path, attacks: list[str], force: bool) -> dict[str, dict[str, dict]]:
    results: dict[str, dict[str, dict]] = {a: {} for a in attacks}
    for attack in attacks:
        for name, run in models(demo).items():
            if attack == "relearn" and name == "target":
                continue  # the target's relearning is every method's baseline, run with the first of them
            path = run / "attacks" / f"{attack}.json"
            extra = {"paraphrase": [f"retain_reference={demo / 'retain'}"], "relearn": RELEARN}.get(attack, [])
            command = ["attack", attack, str(run), "progress=false", *extra]
            if force or not path.is_file():
                print(f"$ unlearn {' '.join(command)}", flush=True)
                timed_cli(command)
            record = json.loads(path.read_text())
            record["command"] = "unlearn " + " ".join(command)
            results[attack][name] = record
    return results


def _f(v, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2e}" if 0 < abs(v) < 10 ** -digits else f"{v:.{digits}f}"


def tables(results: dict[str, dict[str, dict]]) -> list[str]:
    lines: list[str] = []
    if "leak" in results:
        r0 = next(iter(results["leak"].values()))
        lines += [f"## leak@k (k {r0['k']}, T {r0['temperature']:g}, leaked at ROUGE-L recall ≥ {r0['threshold']:g}; "
                  f"{r0['n']} forget questions)", "",
                  "| model | greedy: leaked | sampled: leak@1 | leak@4 | leak@16 | mean best ROUGE | s |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in results["leak"].items():
            c = r["curve"]
            lines.append(f"| {name} | {_f(r['greedy_leak'])} | {_f(c[0])} | {_f(c[min(3, len(c) - 1)])} | "
                         f"{_f(r['leak_at_k'])} | {_f(r['mean_best_rouge'])} | {r['seconds']:.0f} |")
        lines.append("")
    if "paraphrase" in results:
        lines += ["## paraphrase (forget set, original vs paraphrased questions; FQ against the demo's retain model)",
                  "", "| model | ROUGE orig → para | Prob orig → para | TR orig → para | FQ orig → para | s |",
                  "|---|---|---|---|---|---|"]
        for name, r in results["paraphrase"].items():
            o, p, fq = r["sets"]["original"], r["sets"]["paraphrased"], r["forget_quality"]
            lines.append(f"| {name} | {_f(o['rouge'])} → {_f(p['rouge'])} | {_f(o['prob'])} → {_f(p['prob'])} | "
                         f"{_f(o['truth_ratio'])} → {_f(p['truth_ratio'])} | {_f(fq.get('original'))} → "
                         f"{_f(fq.get('paraphrased'))} | {r['seconds']:.0f} |")
        lines.append("")
    if "relearn" in results:
        first = next(iter(results["relearn"].values()))
        seeds = sum(k.startswith("random") for k in first["subset_rows"])
        lines += [f"## relearn ({first['epochs']} epochs on {first['fraction']:g} of the forget split = "
                  f"{next(iter(first['subset_rows'].values()))} rows, lr {first['lr']:g}, batch "
                  f"{first['batch_size']}; random: mean ± sd over {seeds} seeds)",
                  "", "| model | subset | FQ epoch 0 | 1 | 2 | 3 | forget ROUGE epoch 0 → 3 | s |",
                  "|---|---|---|---|---|---|---|---|"]
        rows = {name: r["models"]["unlearned"] for name, r in results["relearn"].items()}
        rows = {"target": first["models"]["target"], **rows} if "target" in first["models"] else rows
        for name, m in rows.items():
            mean = m.get("random_mean") or []
            fq = [f"{_f(e['forget_quality'])} ± {_f(e['forget_quality_std'])}" for e in mean]
            seconds = results["relearn"][name]["seconds"] if name in results["relearn"] else ""
            if mean:
                lines.append(f"| {name} | random | " + " | ".join(fq) + f" | {_f(mean[0]['rouge'])} → "
                             f"{_f(mean[-1]['rouge'])} | {seconds if isinstance(seconds, str) else f'{seconds:.0f}'} |")
            short = m["curves"].get("shortest") or []
            if short:
                lines.append(f"| {name} | shortest | " + " | ".join(_f(e["forget_quality"]) for e in short)
                             + f" | {_f(short[0]['rouge'])} → {_f(short[-1]['rouge'])} | |")
        lines += ["", "(The target's relearning ran once, inside the first method's command; its time is in that "
                      "row.)", ""]
    if "quantize" in results:
        lines += ["## quantize (optimum-quanto, weights only, lm_head kept)", "",
                  "| model | forget ROUGE full → 8-bit → 4-bit | FQ full → 8-bit → 4-bit | MU full → 8-bit → 4-bit | "
                  "restored by 4-bit | s |", "|---|---|---|---|---|---|"]
        for name, r in results["quantize"].items():
            full, q = r["full_precision"], r["quantized"]
            chain = [full, q.get("8", {}), q.get("4", {})]
            share = q.get("4", {}).get("restored_share")
            lines.append(f"| {name} | " + " → ".join(_f(h.get("forget_rouge")) for h in chain) + " | "
                         + " → ".join(_f(h.get("forget_quality")) for h in chain) + " | "
                         + " → ".join(_f(h.get("model_utility_9")) for h in chain) + " | "
                         + ("" if share is None else f"{share:.0%}") + f" | {r['seconds']:.0f} |")
        lines.append("")
    return lines


def plots(results: dict[str, dict[str, dict]], out: Path) -> list[Path]:
    from unlearn.rendering.plots import plot_leak_curves, plot_relearn_curves
    from unlearn.reporting.attacks import relearn_series

    drawn = []
    if "leak" in results:
        leak = results["leak"]
        first = next(iter(leak.values()))
        drawn.append(plot_leak_curves({n: r["curve"] for n, r in leak.items()},
                                      {n: r["greedy_leak"] for n, r in leak.items()}, out / "leak_curves.png",
                                      first["threshold"], "leak@j on the demo's models (dashed: greedy)"))
    if "relearn" in results and {"npo+gd", "simnpo+gd"} <= set(results["relearn"]):
        series = {}
        for name in ("npo+gd", "simnpo+gd"):
            for label, points in relearn_series(results["relearn"][name]).items():
                if label.startswith("unlearned"):
                    series[label.replace("unlearned", name)] = points
        for label, points in relearn_series(results["relearn"]["npo+gd"]).items():
            if label.startswith("target"):
                series[label] = points
        drawn.append(plot_relearn_curves(series, out / "relearn_npo_vs_simnpo.png",
                                         title="Relearning attack: SimNPO+GD vs NPO+GD (SimNPO Fig. 6 layout)"))
    return drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-dir", default="runs/attacks-demo")
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    unknown = sorted(set(attacks) - set(ATTACKS))
    if unknown:
        raise SystemExit(f"--attacks: unknown {unknown} (known: {', '.join(ATTACKS)})")
    demo = Path(args.demo_dir)
    start = time.perf_counter()
    demo_seconds = round(timed_cli(["demo", f"output_dir={demo}", "save_models=true", "progress=false"]), 1)
    results = attack_all(demo, attacks, args.force)
    wall = round(time.perf_counter() - start, 1)
    lines = [f"{machine()}; demo {demo_seconds:.0f} s (stages reused when present), everything {wall:.0f} s.", "",
             *tables(results)]
    print("\n".join(lines))
    if args.record:
        plots(results, HERE)
        (HERE / "tables.md").write_text("\n".join(lines) + "\n")
        (HERE / "results.json").write_text(json.dumps({"machine": machine(), "demo_seconds": demo_seconds,
                                                       "wall_seconds": wall, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()

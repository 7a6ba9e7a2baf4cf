"""`unlearn export RUN_DIR OUT`: the run's unlearned model as a Hugging Face model folder with a model card, ready
for `huggingface-cli upload`."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = ("write a run's unlearned model as a Hugging Face model folder (safetensors, tokenizer, generation config) "
        "with a model card: base model, method and recipe, data, metrics with intervals, provenance")
EXAMPLE = "unlearn export runs/simnpo exports/simnpo-tofu   # then: huggingface-cli upload NAME exports/simnpo-tofu"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory with its saved model "
                   "(save_model=true)")
    p.add_argument("out", metavar="OUT", help="a new or empty folder")
    p.add_argument("--adapter", action="store_true", help="a LoRA run's adapter instead of the merged weights")


def run(args: argparse.Namespace) -> int:
    from unlearn.experiments.export import export_model

    out = export_model(args.run_dir, args.out, adapter=args.adapter)
    print(f"exported {args.run_dir} to {out} (model card: {out / 'README.md'})")
    return 0

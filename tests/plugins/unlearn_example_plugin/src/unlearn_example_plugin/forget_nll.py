"""A small evaluation task: the average answer NLL on the forget split (higher = more forgotten), on TOFU-layout
data. It shows what a task declares (sets, requests, metrics) and what its evaluator returns."""

from typing import Any, ClassVar

import torch

from unlearn.data.collate import pad_right
from unlearn.extend import EvalResult, MetricSpec, SetSpec, Task, register_task
from unlearn.objectives.sequence import sequence_stats
from unlearn.tasks.tofu.data import TofuData


class ForgetNllEvaluator:
    def __init__(self, cfg, formatter):
        records = TofuData(cfg.data.root).forget_split(cfg.data.forget_split)
        self.questions = [r.question for r in records]
        self.samples = formatter.encode_pairs([(r.question, r.answer) for r in records])
        self.pad_id, self.batch_size = formatter.pad_id, cfg.eval.batch_size

    @torch.no_grad()
    def evaluate(self, model, device=None, desc="eval", n_resamples=None, generate=None, sets=None) -> EvalResult:
        device = device or next(model.parameters()).device
        nll = []
        for start in range(0, len(self.samples), self.batch_size):
            batch = {k: v.to(device) for k, v in pad_right(self.samples[start:start + self.batch_size],
                                                           self.pad_id).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            nll += sequence_stats(logits, batch["labels"]).mean_nll.tolist()
        rows = [{"question": q, "nll": v} for q, v in zip(self.questions, nll, strict=True)]
        return EvalResult({"forget": rows}, {"forget_nll": sum(nll) / len(nll), "n": len(nll)})

    def epoch_record(self, model, device, epoch, generate, sets) -> dict[str, Any]:
        return self.evaluate(model, device).metrics


class ForgetNllTask(Task):
    name = "forget_nll"
    version = 1  # raise it whenever a change can change a number (results record it)
    summary = "average answer NLL on the forget split (example plugin)"
    sets = (SetSpec("forget", "the forget split's question/answer pairs", "S(y|x)/|y| of the answer"),)
    requests = ("sequence_likelihood",)
    metrics = (MetricSpec("forget_nll", "forget NLL per token", "run", True, "mean over the forget answers"),)
    defaults: ClassVar[dict[str, Any]] = {"data.forget_split": "forget10", "data.max_length": 500}

    def evaluator(self, cfg, formatter, device):
        return ForgetNllEvaluator(cfg, formatter)

    def write(self, run_dir, result):
        run_dir.write_eval_rows("forget", result.samples["forget"])

    def format_results(self, metrics):
        return f"forget NLL per token: {metrics['forget_nll']:.4f} on {metrics['n']} answers"


register_task(ForgetNllTask())

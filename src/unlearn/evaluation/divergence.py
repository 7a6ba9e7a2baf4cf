"""How far unlearning has moved the model from where it started, step by step (SimNPO App. G, Fig. A4;
docs/formulas.md#divergence): the mean over answer tokens of a fixed set of forget rows of
KL(π_θ(·|x, y_<t) ‖ π_θ0(·|x, y_<t)).

The starting model's next-token log-probabilities on those rows are computed once, before the first step, and kept
(in bfloat16 off the accelerator when they are large), so no second model stays in memory.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from unlearn.data.formatting import IGNORE_INDEX
from unlearn.data.parts import PartData
from unlearn.io import append_jsonl


def answer_token_kl(logits: torch.Tensor, start_logprobs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ_{b,t: label} Σ_v p_θ(v) (log p_θ(v) − log p_0(v)) / #labels, with p at position t predicting label t + 1
    (the shift every loss here uses); ``start_logprobs`` are the starting model's log-softmaxed logits."""
    mask = labels[:, 1:] != IGNORE_INDEX
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    logq = start_logprobs[:, :-1].float()
    per_position = (logp.exp() * (logp - logq)).sum(dim=-1)
    return (per_position * mask).sum() / mask.sum()


class DivergenceProbe:
    """An ``on_step_end`` hook: every ``every`` optimizer steps, the answer-token KL from the starting model on the
    first ``rows`` forget items, appended to ``path`` as ``{"step", "kl"}`` (step 0, KL 0, written at the start)."""

    def __init__(self, model: torch.nn.Module, data: PartData, device: torch.device, path: Path, rows: int = 16,
                 every: int = 1, part: str = "forget"):
        self.indices = list(range(min(rows, len(data.parts[part]))))
        batch = data.batch(part, self.indices)
        self.inputs = {k: v.to(device) for k, v in data.model_inputs(batch).items()}
        self.labels = batch["labels"].to(device)
        self.every, self.path = every, path
        was_training = model.training
        model.eval()
        with torch.no_grad():
            logprobs = F.log_softmax(model(**self.inputs).logits.float(), dim=-1)
        model.train(was_training)
        self.start = logprobs.to(torch.bfloat16).cpu() if logprobs.numel() > 2**26 else logprobs
        if path.exists():
            path.unlink()
        append_jsonl(path, {"step": 0, "kl": 0.0})

    @torch.no_grad()
    def __call__(self, step: int, logs: dict[str, float], model: torch.nn.Module) -> None:
        if step % self.every:
            return
        was_training = model.training
        model.eval()
        logits = model(**self.inputs).logits
        model.train(was_training)
        start = self.start.to(logits.device)
        append_jsonl(self.path, {"step": step, "kl": float(answer_token_kl(logits, start, self.labels))})

"""SimNPO App. G's divergence: the answer-token KL by hand, and the scenario end to end on a tiny model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unlearn.cli import main
from unlearn.evaluation.divergence import answer_token_kl
from unlearn.io import read_json, read_jsonl
from unlearn.runs import RunDirectory


def test_answer_token_kl_by_hand():
    # position 0 predicts the label at 1; p = (½, ½), the start model q = (¾, ¼): KL = ½ ln(½/¾) + ½ ln(½/¼)
    logits = torch.tensor([[[0.0, 0.0], [5.0, -5.0]]])
    start = F.log_softmax(torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0]]]), dim=-1)
    labels = torch.tensor([[-100, 1]])
    assert answer_token_kl(logits, start, labels).item() == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)
    assert answer_token_kl(logits, F.log_softmax(logits, dim=-1), labels).item() == pytest.approx(0.0, abs=1e-7)
    # padding positions do not count: a second, masked position changes nothing
    padded = torch.cat([logits, logits], dim=0)
    assert answer_token_kl(padded, torch.cat([start, start]), torch.tensor([[-100, 1], [-100, -100]])).item() == \
        pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)


def test_divergence_scenario_end_to_end(bench_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "div"
    assert main(["scenario", "divergence", f"model={tiny_model_dir}", f"data={bench_dir}", "methods=[ga,npo]",
                 "rows=4", "progress=false", "model.template=qa", "train.epochs=2", "train.lr=1e-2",
                 "train.batch_size=4", "train.grad_accum=1", "data.max_length=96", "eval.enabled=false",
                 f"output_dir={out}"]) == 0
    result = read_json(out / "divergence.json")
    for method in ("ga", "npo"):
        curve = result["curves"][method]
        assert curve[0] == {"step": 0, "kl": 0.0}
        assert [r["step"] for r in curve] == list(range(len(curve)))  # every step measured
        assert len(curve) == 1 + len(read_jsonl(RunDirectory(out / method).train_log_file))
        assert curve[-1]["kl"] > curve[len(curve) // 2]["kl"] > 0  # moving away from the original model
    assert (out / "plots" / "divergence.png").is_file()

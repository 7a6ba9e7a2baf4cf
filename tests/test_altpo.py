"""AltPO (the unlearn_baselines plugin): its DPO term against a hand computation, the generated part (alternatives
per item, items repeated per alternative), the alternatives written once into the run directory and read back on
--resume, its input errors before any model loads, and its behaviour in training."""

from __future__ import annotations

import math
import re

import pytest
import torch
from accelerate import Accelerator

from tests.conftest import make_tiny
from unlearn.cli import main
from unlearn.data.formatting import EncodedSample
from unlearn.data.parts import PARTS, PartData
from unlearn.io import read_json, write_json
from unlearn.objectives.components import FORGET_OBJECTIVES
from unlearn.objectives.methods import build_method
from unlearn.objectives.needs import PartOutput, ReferenceOutput, StepInputs
from unlearn.objectives.sequence import SequenceStats
from unlearn.runs import RunDirectory
from unlearn.train.loop import LoopSettings, train_loop
from unlearn.train.steps import UnlearnStep

CPU = torch.device("cpu")


def _stats(logp: list[float]) -> SequenceStats:
    nll = torch.tensor([-v for v in logp], dtype=torch.float64, requires_grad=True)
    return SequenceStats(nll, torch.tensor([3, 4]))


def test_altpo_is_dpo_preferring_the_alternative_by_hand():
    alt, forget = _stats([-2.0, -5.0]), _stats([-1.0, -0.5])
    ref_alt, ref_forget = torch.tensor([-3.0, -4.0], dtype=torch.float64), torch.tensor([-1.5, -0.25],
                                                                                         dtype=torch.float64)
    step = StepInputs({"forget": PartOutput(forget, {}), "forget_alt": PartOutput(alt, {})},
                      {"forget": ReferenceOutput(logp=ref_forget), "forget_alt": ReferenceOutput(logp=ref_alt)})
    beta = 0.5
    loss = build_method("altpo", {"beta": beta}).forget.loss(step)
    margins = [(-2.0 + 3.0) - (-1.0 + 1.5), (-5.0 + 4.0) - (-0.5 + 0.25)]
    by_hand = (2 / beta) * sum(math.log1p(math.exp(-beta * m)) for m in margins) / 2
    assert loss.item() == pytest.approx(by_hand, rel=1e-12)
    loss.backward()  # descending it lowers the alternative's NLL and raises the forget answer's
    assert (alt.nll_sum.grad > 0).all() and (forget.nll_sum.grad < 0).all()


def test_the_generated_part_repeats_every_item_once_per_alternative():
    def sample(tag: int) -> EncodedSample:
        return EncodedSample(input_ids=(tag, 2), labels=(-100, 2), prompt_length=1)

    parts = PartData({"forget": [sample(10), sample(11)], "retain": [sample(20), sample(21)]}, pad_id=0,
                     max_length=8)
    out = parts.with_generated("forget_alt", [[sample(30), sample(31)], [sample(32), sample(33)]])
    assert list(out.parts) == ["forget", "forget_alt", "retain"] and len(out) == 4
    assert [s.input_ids[0] for s in out.parts["forget"]] == [10, 10, 11, 11]
    assert [s.input_ids[0] for s in out.parts["forget_alt"]] == [30, 31, 32, 33]
    assert [s.input_ids[0] for s in out.parts["retain"]] == [20, 20, 21, 21]
    assert PARTS["forget_alt"].generated and FORGET_OBJECTIVES.origin("altpo") == "unlearn_baselines.objectives"


@pytest.mark.parametrize(("overrides", "message"), [
    (["forget.max_new_tokens=0"], r"forget.max_new_tokens \(altpo\) must be > 0"),
    (["forget.alternatives=3"], r"forget.alternatives=3 \(altpo\) needs forget.decoding=sample"),
    (["forget.instruction=Tell me about {name}"], r"forget.instruction \(altpo\) may name only"),
    (["forget.beta=-1"], r"forget.beta \(altpo\) must be > 0"),
])
def test_bad_altpo_input_is_one_line_before_any_model_loads(overrides, message, tmp_path, capsys):
    code = main(["run", "model=no/such/model", f"data={tmp_path}", "method=altpo+gd", *overrides])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(message, errors[0]), err


def test_altpo_on_text_corpora_is_refused_before_any_model_loads(tmp_path, capsys):
    code = main(["run", "model=no/such/model", f"data={tmp_path}", "eval.task=muse_news", "eval.enabled=false",
                 "method=altpo+gd", "data.forget_corpus=x.txt"])
    err = capsys.readouterr().err
    assert code == 2 and "text corpora have no questions" in err, err


@pytest.fixture
def common(bench_dir, tiny_model_dir):
    return [f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "model.template=qa",
            "train.max_steps=2", "train.batch_size=4", "train.grad_accum=1", "train.lr=1e-3", "data.max_length=128",
            "eval.generate=false", "eval.bootstrap=0", "eval.max_length=48", "forget.max_new_tokens=12"]


def test_alternatives_are_generated_once_and_read_back_on_resume(common, tmp_path, monkeypatch):
    from unlearn.experiments import generated
    from unlearn.tasks.tofu import evaluate as tofu_eval

    out = tmp_path / "altpo"
    calls = []
    real = generated.generate_answers

    def counted(*args, **kwargs):
        calls.append(len(args[2]))
        return real(*args, **kwargs)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(generated, "generate_answers", counted)
    monkeypatch.setattr(tofu_eval.TofuEvaluator, "evaluate", killed)  # killed at the final evaluation
    args = [*common, "method=altpo+gd", "forget.alternatives=2", "forget.decoding=sample", "train.lora=true"]
    assert main(["run", *args, f"output_dir={out}"]) == 130
    stored = read_json(RunDirectory(out).generated_file)
    assert calls == [16]  # 8 forget questions × 2 alternatives, in one batched call
    assert stored["part"] == "forget_alt" and len(stored["answers"]) == 8
    assert all(len(row) == 2 for row in stored["answers"])
    monkeypatch.undo()
    monkeypatch.setattr(generated, "generate_answers", lambda *a, **k: pytest.fail("generated again"))
    assert main(["run", *args, f"output_dir={out}", "--resume"]) == 0
    assert read_json(RunDirectory(out).generated_file) == stored
    metrics = read_json(RunDirectory(out).metrics_file)
    assert metrics["run"]["resumed_from_step"] == 2 and metrics["run"]["method"]["name"] == "altpo+gd"


def test_stored_alternatives_of_another_request_are_generated_again(common, tmp_path, caplog):
    out = tmp_path / "altpo"
    assert main(["run", *common, "method=altpo+gd", "eval.enabled=false", f"output_dir={out}"]) == 0
    file = RunDirectory(out).generated_file
    stored = read_json(file)
    assert len(stored["answers"]) == 8 and all(len(row) == 1 and row[0].strip() for row in stored["answers"])
    stored["key"]["request"]["max_new_tokens"] = 99
    write_json(file, stored)
    from unlearn.experiments.generated import _stored

    assert _stored(RunDirectory(out), read_json(file)["key"] | {"seed": 1}) is None
    assert "written for another model, request or data" in caplog.text


def test_a_budget_that_cannot_fit_is_named_before_anything_is_generated(common, tmp_path, capsys, monkeypatch):
    import unlearn.experiments.pipeline as pipeline

    def no_weights(*args, **kwargs):
        raise AssertionError("the weights were loaded before the budget was checked")

    monkeypatch.setattr(pipeline, "load_weights", no_weights)
    args = [a for a in common if not a.startswith("forget.max_new_tokens")]
    code = main(["run", *args, "method=altpo+gd", "forget.max_new_tokens=120", f"output_dir={tmp_path / 'a'}"])
    err = capsys.readouterr().err
    assert code != 0 and "does not fit data.max_length=128" in err and "field 'question'" in err, err


def test_a_sweep_names_a_budget_that_cannot_fit_before_its_first_run(common, tmp_path, capsys, monkeypatch):
    import unlearn.experiments.pipeline as pipeline

    def no_weights(*args, **kwargs):
        raise AssertionError("a run started before every run's budget was checked")

    monkeypatch.setattr(pipeline, "load_weights", no_weights)
    args = [a for a in common if not a.startswith(("forget.max_new_tokens", "train.lr"))]
    out = tmp_path / "sweep"
    code = main(["sweep", *args, "method=ga+gd,altpo+gd", "train.lr=1e-3,2e-3", "altpo+gd:forget.max_new_tokens=120",
                 "train.eval_every_epoch=true", "sweep.forget_metric=forget.prob", f"output_dir={out}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "grid run altpo_gd" in err and "does not fit data.max_length=128" in err, err
    assert not (out / "runs").exists()  # the GA runs before it in the grid did not start either


def test_altpo_raises_the_alternative_over_the_forget_answer(tokenizer, forget10_parts):
    _, parts = forget10_parts
    model = make_tiny(tokenizer)
    alternatives = [[s] for s in parts.parts["retain"]]  # stand-ins: any other answer to prefer
    data = parts.with_generated("forget_alt", alternatives)
    from unlearn.train.reference import cached_reference_logp

    ref = cached_reference_logp(model, data, ("forget", "forget_alt"), 16, CPU)
    method = build_method("altpo", {"beta": 0.5})

    def margin() -> float:
        from unlearn.evaluation.likelihood import batched_sequence_nll

        alt, _ = batched_sequence_nll(model, data.parts["forget_alt"], data.pad_id, 16, CPU)
        forget, _ = batched_sequence_nll(model, data.parts["forget"], data.pad_id, 16, CPU)
        return float((forget - alt).mean())  # log π(alt) − log π(forget)

    before = margin()
    settings = LoopSettings(epochs=4, lr=3e-3, batch_size=4, grad_accum=1, warmup_epochs=0, progress=False)
    train_loop(model, UnlearnStep(method, data, CPU, ref), len(data), settings, None, Accelerator(cpu=True))
    assert margin() > before + 1.0


def test_an_empty_alternative_is_named(monkeypatch, common, tmp_path, capsys):
    from unlearn.experiments import generated

    monkeypatch.setattr(generated, "generate_answers", lambda model, tok, prompts, *a, **k: [" "] * len(prompts))
    code = main(["run", *common, "method=altpo+gd", "eval.enabled=false", f"output_dir={tmp_path / 'e'}"])
    err = capsys.readouterr().err
    assert code != 0 and "wrote 8 empty answer(s)" in err and "Traceback" not in err, err

"""The baselines of the ``unlearn_baselines`` plugin (WGA, SatImp, CE-U, UNDIAL): each loss and its gradient against
a hand computation on a tiny example, UNDIAL's independence from prompt and padding positions, their arrival through
the plugin door, their input errors, and their behaviour in training."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from tests.conftest import make_tiny
from unlearn.cli import main
from unlearn.errors import ConfigError
from unlearn.evaluation.likelihood import batched_sequence_nll
from unlearn.objectives.components import FORGET_OBJECTIVES
from unlearn.objectives.methods import build_method
from unlearn.runs import RunDirectory
from unlearn.train.loop import LoopSettings, train_loop
from unlearn.train.reference import FrozenReference
from unlearn.train.steps import FinetuneStep, UnlearnStep
from unlearn_baselines import losses as L

CPU = torch.device("cpu")

# two answers: probabilities 0.5, 0.25 (sample 0) and 0.8 (sample 1, then padding)
P = [[0.5, 0.25], [0.8, 1.0]]
MASK = torch.tensor([[True, True], [True, False]])


def _logps() -> torch.Tensor:
    logps = torch.tensor(P, dtype=torch.float64).log()
    return (logps * MASK).requires_grad_(True)


@pytest.mark.parametrize(("weights", "objective"), [
    (lambda p: p, "wga"),  # β = 1
    (lambda p: p ** 5 * (1 - p), "satimp"),  # β1 = 5, β2 = 1
])
def test_token_weighted_ascent_by_hand(weights, objective):
    logps = _logps()
    w = L.wga_weights(logps, 1.0) if objective == "wga" else L.satimp_weights(logps, 5.0, 1.0)
    loss = L.weighted_ascent_loss(logps, MASK, w)
    answers = [0.5, 0.25, 0.8]
    assert loss.item() == pytest.approx(sum(weights(p) * math.log(p) for p in answers) / 3)
    loss.backward()  # the weights are detached: ∂L/∂log p_t = w_t / N, and 0 off the answers
    expected = [[weights(0.5) / 3, weights(0.25) / 3], [weights(0.8) / 3, 0.0]]
    assert logps.grad.numpy() == pytest.approx(np.array(expected))


def test_weighted_ascent_with_unit_weights_is_ga():
    logps = _logps()
    assert L.weighted_ascent_loss(logps, MASK, torch.ones_like(logps)).item() == pytest.approx(
        (math.log(0.5) + math.log(0.25) + math.log(0.8)) / 3)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z[np.isfinite(z)].max())
    return e / e.sum()


def _soft_ce(z: np.ndarray, q: np.ndarray) -> float:
    log_p = z - np.log(np.exp(z).sum())
    return float(-(q * log_p).sum())


def test_ceu_by_hand_and_its_gradient():
    z = torch.tensor([[[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 2.0], [0.3, 0.0, -0.2, 1.5], [0.0, 0.0, 0.0, 0.0]]],
                     dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[-100, 3, 2, 0]])  # a prompt token, then three answer tokens
    loss = L.ceu_loss(z, labels, skip_first=1)  # the first answer token (3, predicted at t=0) is left out
    zs = z.detach().numpy()[0]
    expected, grads = [], np.zeros_like(zs)
    for t, y in ((1, 2), (2, 0)):  # logits at t predict labels[t + 1]
        masked = zs[t].copy()
        masked[y] = -np.inf
        q = _softmax(masked)
        expected.append(_soft_ce(zs[t], q))
        grads[t] = (_softmax(zs[t]) - q) / 2
    assert loss.item() == pytest.approx(np.mean(expected))
    loss.backward()
    assert z.grad.numpy()[0] == pytest.approx(grads)
    assert L.ceu_loss(z, labels, skip_first=0).item() != pytest.approx(loss.item())  # t=0 joins


def test_undial_by_hand_and_its_gradient():
    student = torch.tensor([[[0.2, 0.1, -0.3], [1.0, 0.0, 0.5], [0.0, 0.0, 0.0]]], dtype=torch.float64,
                           requires_grad=True)
    teacher = torch.tensor([[[2.0, 0.0, 1.0], [0.5, 3.0, 0.0], [9.0, 9.0, 9.0]]], dtype=torch.float64)
    labels = torch.tensor([[-100, 0, 1]])
    beta = 2.0
    loss = L.undial_loss(student, teacher, labels, beta)
    expected, grads = [], np.zeros((3, 3))
    for t, y in ((0, 0), (1, 1)):
        adjusted = teacher.numpy()[0, t].copy()
        adjusted[y] -= beta
        q = _softmax(adjusted)
        zs = student.detach().numpy()[0, t]
        expected.append(_soft_ce(zs, q))
        grads[t] = (_softmax(zs) - q) / 2
    assert loss.item() == pytest.approx(np.mean(expected))
    loss.backward()
    assert student.grad.numpy()[0] == pytest.approx(grads)


def test_undial_ignores_prompt_and_padding_positions():
    """OpenUnlearning's version averages prompt and padding positions too (and lowers vocabulary entry V − 100
    there); ours reads the answer positions only, so neither the prompt's logits nor the padding change it."""
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(1, 4, 120, generator=generator, dtype=torch.float64)
    teacher = torch.randn(1, 4, 120, generator=generator, dtype=torch.float64)
    labels = torch.tensor([[-100, 5, 7, 9]])
    alone = L.undial_loss(student, teacher, labels, 10.0)
    # a longer prompt with arbitrary logits before the same answer
    prompt = torch.randn(1, 3, 120, generator=generator, dtype=torch.float64)
    longer = L.undial_loss(torch.cat([prompt, student], 1), torch.cat([prompt * 3, teacher], 1),
                           torch.tensor([[-100, -100, -100, -100, 5, 7, 9]]), 10.0)
    # a batch mate with padding after its short answer
    mate = torch.randn(1, 4, 120, generator=generator, dtype=torch.float64)
    pair = L.undial_loss(torch.cat([student, mate]), torch.cat([teacher, mate]),
                         torch.tensor([[-100, 5, 7, 9], [-100, 4, -100, -100]]), 10.0)
    mate_only = L.undial_loss(mate, mate, torch.tensor([[-100, 4, -100, -100]]), 10.0)
    assert float(longer) == pytest.approx(float(alone), rel=1e-12)
    assert float(pair) == pytest.approx((3 * float(alone) + float(mate_only)) / 4, rel=1e-12)  # a token mean


def test_the_baselines_come_through_the_plugin_door(capsys):
    for name in ("wga", "satimp", "ceu", "undial"):
        assert FORGET_OBJECTIVES.origin(name) == "unlearn_baselines.objectives"
    assert FORGET_OBJECTIVES.origin("lwga") == "unlearn.objectives.components"
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("satimp", "ceu", "undial", "lwga"))
    assert "Before 0.2 `wga` named SimNPO's length-weighted W-GradDiff, now `lwga`" in out
    assert build_method("w-graddiff").name == "lwga+gd"


def test_recipes_follow_open_unlearning():
    wga = build_method("wga+gd", recipe="auto", benchmark="tofu", forget_split="forget10")
    assert wga.forget.params.beta == 1.0 and (wga.forget_weight, wga.retain_weight) == (1.0, 1.0)
    satimp = build_method("satimp+gd", recipe="auto", benchmark="muse_news")
    assert (satimp.forget.params.beta1, satimp.forget.params.beta2, satimp.forget_weight) == (5.0, 1.0, 0.1)
    assert build_method("undial", recipe="auto", benchmark="tofu").forget.params.beta == 10.0
    assert "OpenUnlearning" in satimp.recipe.variant.source


@pytest.mark.parametrize(("overrides", "message"), [
    (["method=satimp+gd", "forget.beta1=-1"], r"forget.beta1 \(satimp\) must be ≥ 0"),
    (["method=wga+gd", "forget.beta=-0.5"], r"forget.beta \(wga\) must be ≥ 0"),
    (["method=ceu", "forget.skip_first=1.5"], r"forget.skip_first \(ceu\) must be a whole number"),
    (["method=undial+gd", "forget.beta=0"], r"forget.beta \(undial\) must be > 0"),
])
def test_bad_parameters_are_one_line_before_any_model_loads(overrides, message, tmp_path, capsys):
    code = main(["run", "model=no/such/model", f"data={tmp_path}", *overrides])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(message, errors[0]), err


def test_stale_wga_is_told_what_the_name_means_now(caplog):
    import unlearn.objectives.methods as M

    M._told.discard("wga")
    build_method("wga+gd")
    assert "now `lwga`" in caplog.text


# ------------------------------------------------------------------------------------ behaviour
def _nll(model, parts) -> float:
    nll, n = batched_sequence_nll(model, parts.parts["forget"], parts.pad_id, 16, CPU)
    return float((nll / n).mean())


def _memorized(tokenizer, parts, tmp_path):
    """The tiny model fine-tuned on the forget answers, so their tokens are likely (p_t^β weights are not ~0)."""
    model = make_tiny(tokenizer)
    settings = LoopSettings(epochs=30, lr=1e-2, batch_size=8, grad_accum=1, warmup_epochs=0, progress=False)
    train_loop(model, FinetuneStep(parts, CPU, part="forget"), len(parts), settings, tmp_path / "ft",
               Accelerator(cpu=True))
    return model


@pytest.mark.parametrize(("name", "params"), [("wga", {}), ("satimp", {}), ("ceu", {}), ("undial", {"beta": 3.0})])
def test_the_baselines_lower_the_forget_likelihood_of_a_model_that_knows_it(name, params, tokenizer, forget10_parts,
                                                                             tmp_path):
    _, parts = forget10_parts
    model = _memorized(tokenizer, parts, tmp_path)
    before = _nll(model, parts)
    method = build_method(name, params)
    reference = FrozenReference.for_model(model) if method.needs_reference_model else None
    settings = LoopSettings(epochs=6, lr=5e-3, batch_size=8, grad_accum=1, warmup_epochs=0, progress=False)
    train_loop(model, UnlearnStep(method, parts, CPU, None, reference), len(parts), settings, tmp_path / name,
               Accelerator(cpu=True))
    assert _nll(model, parts) > before + 0.05


def test_bad_satimp_config_error_type():
    with pytest.raises(ConfigError, match="beta2"):
        build_method("satimp", {"beta2": -2.0})


def test_the_baselines_run_under_lora_in_a_sweep_of_processes(bench_dir, tiny_model_dir, tmp_path):
    """Through the whole door: entry point → sweep → `unlearn run` processes (which find the plugin themselves)
    → LoRA, where UNDIAL's teacher is the model with its adapters off, PDU keeps its dual variable and AltPO
    generates its alternatives in each run."""
    out = tmp_path / "sweep"
    args = ["sweep", f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "model.template=qa",
            "data.max_length=96", "eval.max_length=48", "eval.batch_size=32", "eval.bootstrap=0",
            "sweep.forget_metric=forget_efficacy_without_es", "sweep.utility_metric=model_utility_9",
            "method=wga+gd,undial+gd,pdu,altpo+gd", "pdu:retain.dual_step=0.1", "altpo+gd:forget.max_new_tokens=8",
            "train.lora=true", "train.lr=1e-3", "train.max_steps=1", "train.batch_size=4", "train.grad_accum=1",
            "train.eval_every_epoch=true", "sweep.jobs=2", "sweep.threads=1", f"output_dir={out}"]
    assert main(args) == 0
    from unlearn.io import read_json

    result = read_json(out / "sweep.json")
    assert {r["method"] for r in result["runs"]} == {"wga+gd", "undial+gd", "pdu", "altpo+gd"}
    for run in out.glob("runs/*/metrics.json"):
        assert read_json(run)["run"]["optimizer_steps"] == 1
    assert len(list(out.glob(f"runs/altpo*/{RunDirectory.GENERATED}"))) == 1


def test_under_lora_undials_teacher_is_the_same_model_with_adapters_off(tokenizer):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(make_tiny(tokenizer), LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    assert build_method("undial+gd").needs_reference_model
    assert FrozenReference.for_model(model)._separate is None  # no second copy of the weights

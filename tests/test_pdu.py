"""PDU (the unlearn_baselines plugin): logit-margin flattening against a hand computation, the dual variable's
projected ascent per step and per epoch, its place in the train log and the checkpoint (a resumed run continues it
exactly), its input errors, and its behaviour in training."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from tests.conftest import make_tiny
from tests.test_baselines import _memorized, _nll
from unlearn.cli import main
from unlearn.errors import ConfigError
from unlearn.experiments.unlearning import MethodState
from unlearn.io import read_json
from unlearn.objectives.components import FORGET_OBJECTIVES, REGULARIZERS
from unlearn.objectives.methods import build_method
from unlearn.objectives.needs import PartOutput, StepInputs
from unlearn.objectives.sequence import SequenceStats
from unlearn.runs import RunDirectory
from unlearn.train.loop import LoopSettings, train_loop
from unlearn.train.steps import UnlearnStep
from unlearn_baselines import losses as L

CPU = torch.device("cpu")


# ------------------------------------------------------------------------------------ the loss by hand
def _example():
    z = torch.tensor([[[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 2.0], [0.3, 0.0, -0.2, 1.5], [0.0, 0.5, 0.0, 0.0]],
                      [[2.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5], [1.0, 2.0, 3.0, 4.0], [9.0, 0.0, 0.0, 0.0]]],
                     dtype=torch.float64, requires_grad=True)
    # sample 0: a prompt token then three answer tokens; sample 1: two answer tokens then padding
    labels = torch.tensor([[-100, 3, 2, 0], [-100, 1, 2, -100]])
    return z, labels


def _margin2(row: np.ndarray) -> float:
    return float((row.max() - row.mean()) ** 2)


def test_logit_margin_flattening_by_hand_and_its_gradient():
    z, labels = _example()
    loss = L.logit_margin_flattening_loss(z, labels, "answer")
    zs = z.detach().numpy()
    # logits at t predict labels[t + 1]: sample 0 at t = 0, 1, 2; sample 1 at t = 0, 1
    per_answer = [np.mean([_margin2(zs[0, t]) for t in (0, 1, 2)]), np.mean([_margin2(zs[1, t]) for t in (0, 1)])]
    assert loss.item() == pytest.approx(np.mean(per_answer), rel=1e-12)
    loss.backward()
    # ∂/∂z_k of (max − mean)² = 2·(max − mean)·(1[k = argmax] − 1/V), weighted 1/(|y_b|·B)
    expected = np.zeros_like(zs)
    for b, ts in ((0, (0, 1, 2)), (1, (0, 1))):
        for t in ts:
            row = zs[b, t]
            g = -np.full(4, 1 / 4)
            g[row.argmax()] += 1
            expected[b, t] = 2 * (row.max() - row.mean()) * g / (len(ts) * 2)
    assert z.grad.numpy() == pytest.approx(expected, abs=1e-12)


def test_logit_margin_flattening_over_every_position_is_open_unlearnings_mean():
    z, labels = _example()
    zs = z.detach().numpy()
    every = np.mean([_margin2(zs[b, t]) for b in range(2) for t in range(4)])
    assert L.logit_margin_flattening_loss(z, labels, "all").item() == pytest.approx(every, rel=1e-12)
    flat = torch.zeros(1, 3, 5)  # every logit equal: the distribution is uniform and the loss 0
    assert L.logit_margin_flattening_loss(flat, torch.tensor([[-100, 1, 2]])).item() == 0.0


def test_dual_ascent_is_projected():
    assert L.dual_ascent(1.0, 0.25, 2.0) == 1.5
    assert L.dual_ascent(1.0, -0.75, 2.0) == 0.0  # max(0, 1 − 1.5)
    assert L.dual_ascent(0.0, -1.0, 5.0) == 0.0


# ------------------------------------------------------------------------------------ the dual variable
def _dual(**params):
    return build_method("pdu", {}, {"epsilon": 0.5, **params}).regularizer


def _retain_step(nll_sum: float, n_tokens: int) -> StepInputs:
    stats = SequenceStats(torch.tensor([nll_sum]), torch.tensor([n_tokens]))
    return StepInputs({"retain": PartOutput(stats=stats, batch={})})


def test_the_dual_term_is_lambda_times_the_constraint_and_records_the_retain_nll():
    dual = _dual(dual_init=3.0)
    loss = dual.loss(_retain_step(8.0, 4))  # M(retain) = 2
    assert loss.item() == pytest.approx(3.0 * (2.0 - 0.5))
    assert {k: float(v) for k, v in dual.take_records().items()} == {"retain_nll": 2.0}
    assert dual.take_records() == {}


def test_per_step_updates_after_the_warm_up_and_logs_the_lambda_the_step_used():
    dual = _dual(dual_init=2.0, dual_step=0.5, dual_warmup_epochs=1)
    assert dual.after_step({"retain_nll": 1.5}, epoch=0) == {"dual": 2.0}
    assert dual.dual == 2.0  # held during the warm-up epoch
    assert dual.after_step({"retain_nll": 1.5}, epoch=1) == {"dual": 2.0}
    assert dual.dual == 2.5  # 2 + 0.5·(1.5 − 0.5)
    assert dual.after_step({"retain_nll": 0.1}, epoch=1) == {"dual": 2.5}
    assert dual.dual == pytest.approx(2.3)  # 2.5 + 0.5·(0.1 − 0.5)
    assert dual.after_epoch(1, lambda fn: pytest.fail("a per-step dual measures nothing")) == {"dual": dual.dual}
    assert dual.state_dict() == {"dual": dual.dual}
    other = _dual()
    other.load_state_dict(dual.state_dict())
    assert other.dual == dual.dual


def test_per_epoch_updates_with_the_retain_nll_of_every_item():
    dual = _dual(dual_init=1.0, dual_step=2.0, dual_update="epoch", dual_warmup_epochs=2)
    assert dual.after_step({"retain_nll": 9.0}, epoch=5) == {"dual": 1.0} and dual.dual == 1.0
    seen = []

    def measure(fn):
        seen.append(float(fn(_retain_step(3.0, 2))))  # M = 1.5
        return seen[-1]

    assert dual.after_epoch(0, measure) == {"dual": 1.0} and not seen  # warm-up: epoch 1 of 2
    assert dual.after_epoch(1, measure) == {"dual": 3.0, "dual_retain_nll": 1.5}  # 1 + 2·(1.5 − 0.5)
    assert seen == [1.5]


def test_pdu_comes_through_the_plugin_door_with_its_recipe():
    assert FORGET_OBJECTIVES.origin("lmf") == REGULARIZERS.origin("dual") == "unlearn_baselines.objectives"
    method = build_method("pdu", recipe="auto", benchmark="tofu", forget_split="forget10")
    assert method.name == "lmf+dual" and method.stateful
    p = method.regularizer.params
    assert (p.epsilon, p.dual_init, p.dual_step, p.dual_update, p.dual_warmup_epochs) == (0.3, 100.0, 5.0, "step", 5)
    assert method.regularizer.dual == 100.0 and "OpenUnlearning" in method.recipe.variant.source
    assert not build_method("ga+gd").stateful


@pytest.mark.parametrize(("overrides", "message"), [
    (["method=pdu", "method.recipe=none"], r"retain.epsilon is required by the dual regularizer"),
    (["method=pdu", "retain.epsilon=0"], r"retain.epsilon \(dual\) must be > 0"),
    (["method=pdu", "retain.epsilon=-1"], r"retain.epsilon \(dual\) must be > 0"),
    (["method=pdu", "retain.epsilon=0.5", "retain.dual_step=0"], r"retain.dual_step \(dual\) must be > 0"),
    (["method=pdu", "retain.epsilon=0.5", "retain.dual_update=batch"], r"retain.dual_update \(dual\) must be one of"),
    (["method=pdu", "retain.epsilon=0.5", "method.retain_weight=2"], r"its dual variable"),
])
def test_bad_pdu_input_is_one_line_before_any_model_loads(overrides, message, tmp_path, capsys):
    code = main(["run", "model=no/such/model", f"data={tmp_path}", *overrides])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(message, errors[0]), err


def test_a_method_alias_may_not_shadow_an_objective():
    from unlearn.objectives.methods import register_alias

    with pytest.raises(ConfigError, match="is taken: it is a forget objective"):
        register_alias("npo", "lmf+dual")
    register_alias("pdu", "lmf+dual")  # registering the same alias again is harmless


# ------------------------------------------------------------------------------------ in training
def _train(method, parts, tokenizer, run_dir, settings, **kwargs):
    model = make_tiny(tokenizer)
    step = UnlearnStep(method, parts, CPU)
    train_loop(model, step, len(parts), settings, run_dir, Accelerator(cpu=True),
               state=MethodState(method, step, settings.batch_size), **kwargs)
    return model


def _duals(run_dir) -> list[float]:
    return [row["dual"] for row in RunDirectory(run_dir).read_train_log()]


@pytest.mark.parametrize(("epsilon", "direction"), [(0.01, "rises"), (50.0, "falls")])
def test_the_dual_variable_rises_while_the_retain_loss_exceeds_epsilon(epsilon, direction, tokenizer,
                                                                        forget10_parts, tmp_path):
    _, parts = forget10_parts
    method = build_method("pdu", {}, {"epsilon": epsilon, "dual_init": 1.0, "dual_step": 0.05})
    settings = LoopSettings(epochs=2, lr=1e-3, batch_size=4, grad_accum=1, warmup_epochs=0, progress=False)
    _train(method, parts, tokenizer, tmp_path / "run", settings)
    rows = RunDirectory(tmp_path / "run").read_train_log()
    duals = [r["dual"] for r in rows]
    assert duals[0] == 1.0 and len(duals) == 4
    for before, row, after in zip(duals, rows, [*duals[1:], method.regularizer.dual], strict=True):
        assert after == pytest.approx(max(0.0, before + 0.05 * (row["retain_nll"] - epsilon)), rel=1e-12)
    assert (method.regularizer.dual > 1.0) if direction == "rises" else (method.regularizer.dual < 1.0)


def test_lmf_flattens_the_forget_predictions_of_a_model_that_knows_them(tokenizer, forget10_parts, tmp_path):
    _, parts = forget10_parts
    model = _memorized(tokenizer, parts, tmp_path)
    batch = parts.batch("forget", range(len(parts)))

    def margin(m) -> float:
        with torch.no_grad():
            logits = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return float(L.logit_margin_flattening_loss(logits, batch["labels"]))

    before, nll_before = margin(model), _nll(model, parts)
    settings = LoopSettings(epochs=3, lr=3e-3, batch_size=4, grad_accum=1, warmup_epochs=0, progress=False)
    train_loop(model, UnlearnStep(build_method("lmf"), parts, CPU), len(parts), settings, None, Accelerator(cpu=True))
    assert margin(model) < 0.5 * before
    assert _nll(model, parts) > nll_before + 0.5  # the memorised answers are no longer likely


@pytest.mark.parametrize("update", ["step", "epoch"])
def test_a_resumed_run_continues_the_dual_variable_exactly(update, tokenizer, forget10_parts, tmp_path):
    _, parts = forget10_parts
    retain = {"epsilon": 0.5, "dual_init": 2.0, "dual_step": 0.3, "dual_update": update}
    settings = LoopSettings(epochs=3, lr=1e-3, batch_size=4, grad_accum=1, warmup_epochs=0, progress=False,
                            save_every=1)
    whole = build_method("pdu", {}, retain)
    model_a = _train(whole, parts, tokenizer, tmp_path / "whole", settings)
    broken = build_method("pdu", {}, retain)
    _train(broken, parts, tokenizer, tmp_path / "resumed", settings, stop_after_steps=3)  # mid-epoch 2
    resumed = build_method("pdu", {}, retain)  # a fresh process: λ starts at λ₀ until the checkpoint restores it
    model_b = _train(resumed, parts, tokenizer, tmp_path / "resumed", settings, resume=True)
    assert resumed.regularizer.dual == whole.regularizer.dual
    assert _duals(tmp_path / "resumed") == _duals(tmp_path / "whole")
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    state = read_json(RunDirectory(tmp_path / "resumed").checkpoint_dir / "state.json")
    assert state["method_state"] == {"retain": {"dual": whole.regularizer.dual}}
    duals = _duals(tmp_path / "whole")  # two steps an epoch
    if update == "epoch":  # λ moves between epochs, and only there
        assert duals[0] == duals[1] != duals[2] == duals[3] != duals[4] == duals[5]
    else:
        assert len(set(duals)) == 6


def test_pdu_runs_under_lora_through_the_cli(bench_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "pdu"
    args = ["run", f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "model.template=qa",
            "data.max_length=96", "eval.max_length=48", "eval.batch_size=32", "eval.bootstrap=0",
            "eval.generate=false", "method=pdu", "retain.epsilon=0.5", "retain.dual_step=0.1", "train.lora=true",
            "train.lr=1e-3", "train.max_steps=2", "train.batch_size=4", "train.grad_accum=1",
            "train.eval_every_epoch=true", f"output_dir={out}"]
    assert main(args) == 0
    rows = RunDirectory(out).read_train_log()
    # TOFU's recipe starts λ at 100 and holds it through 5 warm-up epochs; the explicit ε wins over its 0.3
    assert [r["dual"] for r in rows] == [100.0, 100.0] and all("retain_nll" in r for r in rows)
    described = read_json(RunDirectory(out).metrics_file)["run"]["method"]
    assert described["name"] == "lmf+dual" and described["retain"]["epsilon"] == 0.5

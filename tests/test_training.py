"""The training loop (schedule, resume, NaN guard) and behavioural tests of every objective on a tiny model."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from tests.conftest import make_tiny
from unlearn.errors import TrainingDiverged
from unlearn.evaluation.likelihood import batched_sequence_nll
from unlearn.io import read_jsonl
from unlearn.objectives import forget as F
from unlearn.objectives.methods import build_method
from unlearn.runs import RunDirectory
from unlearn.train.loop import LoopSettings, accumulate, epoch_groups, train_loop
from unlearn.train.reference import FrozenReference, cached_reference_logp
from unlearn.train.steps import UnlearnStep

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def setting(forget10_parts):
    return forget10_parts


def _mean_nll(model, parts, part):
    nll, ntok = batched_sequence_nll(model, parts.parts[part], parts.pad_id, 16, CPU)
    return float((nll / ntok).mean())


def _train(model, parts, method, tmp_path, steps=6, lr=5e-3, **kw):
    cached = method.cached_reference_parts
    ref_logp = cached_reference_logp(model, parts, cached, 8, CPU) if cached else None
    reference = FrozenReference.for_model(model) if method.needs_reference_model else None
    step = UnlearnStep(method, parts, CPU, ref_logp, reference)
    settings = LoopSettings(epochs=steps, lr=lr, batch_size=8, grad_accum=1, warmup_epochs=0, progress=False, **kw)
    return train_loop(model, step, len(parts), settings, tmp_path, Accelerator(cpu=True))


def test_epoch_order_is_seeded_and_covers_everything():
    s = LoopSettings(batch_size=3, grad_accum=2, seed=4)
    groups = epoch_groups(10, s, epoch=0)
    flat = [i for g in groups for mb in g for i in mb]
    assert sorted(flat) == list(range(10)) and len(groups) == 2  # ceil(ceil(10/3)/2)
    assert epoch_groups(10, s, 0) == groups and epoch_groups(10, s, 1) != groups


def test_schedule_warms_up_over_the_first_epoch_then_decays(tokenizer, setting, tmp_path):
    _, parts = setting
    model = make_tiny(tokenizer)
    method = build_method("ga+gd")
    step = UnlearnStep(method, parts, CPU)
    settings = LoopSettings(epochs=3, lr=0.01, batch_size=2, grad_accum=1, progress=False)  # 4 steps per epoch
    train_loop(model, step, len(parts), settings, tmp_path, Accelerator(cpu=True))
    lrs = [r["lr"] for r in read_jsonl(RunDirectory(tmp_path).train_log_file)]
    assert len(lrs) == 12
    assert lrs[:5] == pytest.approx([0.0, 0.0025, 0.005, 0.0075, 0.01])
    assert lrs[4:] == pytest.approx([0.01 * (12 - s) / 8 for s in range(4, 12)])


def test_resume_continues_to_the_same_result(tokenizer, setting, tmp_path):
    _, parts = setting
    method = build_method("npo+gd")

    def run(run_dir, stop=None, resume=False, model=None):
        model = model or make_tiny(tokenizer, seed=3)
        ref = cached_reference_logp(make_tiny(tokenizer, seed=3), parts, method.cached_reference_parts, 8, CPU)
        step = UnlearnStep(method, parts, CPU, ref)
        settings = LoopSettings(epochs=3, lr=3e-3, batch_size=2, grad_accum=2, save_every=1, progress=False)
        train_loop(model, step, len(parts), settings, run_dir, Accelerator(cpu=True), resume=resume,
                   stop_after_steps=stop)
        return model

    straight = run(tmp_path / "a")
    interrupted = run(tmp_path / "b", stop=3)  # killed after 3 of 6 optimizer steps (mid-epoch 2)
    assert not all(torch.equal(p, q) for p, q in zip(straight.parameters(), interrupted.parameters(), strict=True))
    resumed = run(tmp_path / "b", resume=True)  # a fresh process: new model object, state from the checkpoint
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    assert RunDirectory(tmp_path / "a").read_train_log() == read_jsonl(RunDirectory(tmp_path / "b").train_log_file)


def test_resume_refuses_other_settings(tokenizer, setting, tmp_path):
    _, parts = setting
    method = build_method("ga+gd")
    model = make_tiny(tokenizer)
    step = UnlearnStep(method, parts, CPU)
    train_loop(model, step, len(parts), LoopSettings(epochs=1, batch_size=4, grad_accum=1, progress=False),
               tmp_path, Accelerator(cpu=True))
    with pytest.raises(TrainingDiverged, match="other settings"):
        train_loop(model, step, len(parts), LoopSettings(epochs=1, lr=1.0, batch_size=4, progress=False), tmp_path,
                   Accelerator(cpu=True), resume=True)


def test_stop_after_epoch_is_the_full_runs_trajectory_up_to_that_epoch(tokenizer, setting, tmp_path):
    """A run stopped after epoch 2 of 3 keeps the 3-epoch schedule: its steps (losses, learning rates) and weights are
    the full run's at the end of epoch 2, not a 2-epoch run's (whose schedule decays to 0 sooner)."""
    _, parts = setting
    method = build_method("ga+gd")

    def run(run_dir, epochs, stop=0, resume=False, stop_after_steps=None):
        model = make_tiny(tokenizer, seed=2)
        settings = LoopSettings(epochs=epochs, lr=3e-3, batch_size=2, grad_accum=2, stop_after_epoch=stop,
                                progress=False)
        snapshots = {}

        def keep(epoch, m):
            snapshots[epoch] = [p.detach().clone() for p in m.parameters()]
            return {}

        result = train_loop(model, UnlearnStep(method, parts, CPU), len(parts), settings, run_dir,
                            Accelerator(cpu=True), on_epoch_end=keep, resume=resume,
                            stop_after_steps=stop_after_steps)
        return model, snapshots, result, RunDirectory(run_dir).read_train_log()

    _, full_epochs, _, full_log = run(tmp_path / "full", 3)
    stopped, _, result, log = run(tmp_path / "stopped", 3, stop=2)
    assert result.global_step == 4 and [r["step"] for r in log] == [1, 2, 3, 4]  # 2 optimizer steps per epoch
    assert log == full_log[:4]
    for p, q in zip(stopped.parameters(), full_epochs[2], strict=True):
        assert torch.equal(p.detach(), q)
    *_, short_log = run(tmp_path / "two", 2)
    assert [r["lr"] for r in short_log] != [r["lr"] for r in log]  # the stop is not a shorter run
    run(tmp_path / "killed", 3, stop=2, stop_after_steps=3)  # killed after 3 of its 4 steps
    _, _, resumed, resumed_log = run(tmp_path / "killed", 3, stop=2, resume=True)
    assert resumed.global_step == 4 and resumed_log == log
    with pytest.raises(TrainingDiverged, match="past epoch 1"):
        run(tmp_path / "full", 3, stop=1, resume=True)  # its checkpoint is at the end of epoch 3


def _grads(model, step, micro_batches):
    model.zero_grad(set_to_none=True)
    accumulate(model, step, micro_batches, Accelerator(cpu=True), 0, 0)
    return [p.grad.clone() for p in model.parameters()]


def test_gradient_accumulation_averages_micro_batch_losses(tokenizer, setting):
    """Pinned semantics: an optimizer step's gradient is the MEAN of its micro-batches' gradients, each micro-batch
    loss being that micro-batch's own mean. 8×1 equals 4×2 for a per-sample-mean loss (SimNPO); for a token-mean
    loss (GA) 4×2 is the mean of the two micro-batch token means, which differs from one token mean over all 8."""
    _, parts = setting
    s8, s4 = LoopSettings(batch_size=8, grad_accum=1, seed=0), LoopSettings(batch_size=4, grad_accum=2, seed=0)
    [eight], [four_a, four_b] = epoch_groups(len(parts), s8, 0)[0], epoch_groups(len(parts), s4, 0)[0]
    assert sorted(four_a + four_b) == sorted(eight)
    model = make_tiny(tokenizer)
    simnpo = UnlearnStep(build_method("simnpo", {"beta": 2.5}), parts, CPU)
    for a, b in zip(_grads(model, simnpo, [eight]), _grads(model, simnpo, [four_a, four_b]), strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    ga = UnlearnStep(build_method("ga"), parts, CPU)
    pooled = _grads(model, ga, [eight])
    accumulated = _grads(model, ga, [four_a, four_b])
    halves = [(x + y) / 2 for x, y in zip(_grads(model, ga, [four_a]), _grads(model, ga, [four_b]), strict=True)]
    for a, h in zip(accumulated, halves, strict=True):
        assert torch.allclose(a, h, atol=1e-6, rtol=1e-5)
    tokens = [sum(len(parts.parts["forget"][i].input_ids) - parts.parts["forget"][i].prompt_length for i in mb)
              for mb in (four_a, four_b)]
    assert tokens[0] != tokens[1]  # so the two conventions differ here
    assert max(float((a - p).abs().max()) for a, p in zip(accumulated, pooled, strict=True)) > 1e-4


def test_nan_loss_stops_before_touching_the_weights(tokenizer, tmp_path):
    model = make_tiny(tokenizer)
    before = [p.detach().clone() for p in model.parameters()]
    calls = []

    def step(m, indices):
        calls.append(indices)
        loss = m(input_ids=torch.tensor([[1, 2, 3]])).logits.sum() * 0
        return loss / 0.0 if len(calls) == 2 else loss, {"forget_loss": torch.tensor(float("nan"))}

    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1, optimizer step 2 .*forget_loss=nan"):
        train_loop(model, step, 8, LoopSettings(epochs=1, batch_size=2, grad_accum=1, progress=False), tmp_path,
                   Accelerator(cpu=True))
    # step 1 had a zero gradient (weight decay only touches matrices, lr is 0 during warm-up at step 1)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert not RunDirectory(tmp_path).checkpoint_dir.exists()


# ------------------------------------------------------------------------------------ behaviour
@pytest.mark.parametrize("name", ["ga", "npo", "simnpo", "lwga", "ceu", "undial"])
def test_untargeted_objectives_lower_the_forget_likelihood(name, tokenizer, setting, tmp_path):
    _, parts = setting
    model = make_tiny(tokenizer)
    before = _mean_nll(model, parts, "forget")
    kwargs = {"beta": 0.5} if name in ("npo", "simnpo") else {}
    _train(model, parts, build_method(name, kwargs, forget_weight=1.0), tmp_path)
    assert _mean_nll(model, parts, "forget") > before + 0.05


def test_idk_raises_the_refusal_likelihood(tokenizer, setting, tmp_path):
    _, parts = setting
    model = make_tiny(tokenizer)
    before = _mean_nll(model, parts, "forget_idk")
    _train(model, parts, build_method("idk"), tmp_path)
    assert _mean_nll(model, parts, "forget_idk") < before - 0.1


def test_dpo_prefers_the_refusal_over_the_answer(tokenizer, setting, tmp_path):
    _, parts = setting
    model = make_tiny(tokenizer)
    margin = lambda: _mean_nll(model, parts, "forget") - _mean_nll(model, parts, "forget_idk")  # noqa: E731
    before = margin()
    _train(model, parts, build_method("dpo", {"beta": 0.5}), tmp_path)
    assert margin() > before + 0.1


def test_me_raises_prediction_entropy_on_forget_data(tokenizer, setting, tmp_path):
    _, parts = setting
    model = make_tiny(tokenizer)

    def me_value():
        batch = parts.batch("forget", range(len(parts)))
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return float(F.me_loss(logits[:, :-1], batch["attention_mask"][:, 1:]))

    before = me_value()
    _train(model, parts, build_method("me", forget_weight=1.0), tmp_path)
    assert me_value() < 0.5 * before


def test_gd_and_ap_protect_the_retain_answers(tokenizer, setting, tmp_path):
    _, parts = setting

    def retain_margin(model):  # log π(y_r) − log π(idk | x_r), per token
        return _mean_nll(model, parts, "retain_idk") - _mean_nll(model, parts, "retain")

    plain = make_tiny(tokenizer)
    _train(plain, parts, build_method("idk"), tmp_path / "idk")
    with_ap = make_tiny(tokenizer)
    _train(with_ap, parts, build_method("idk+ap", retain_weight=5.0), tmp_path / "ap")
    assert retain_margin(with_ap) > retain_margin(plain) + 0.1
    with_gd = make_tiny(tokenizer)
    _train(with_gd, parts, build_method("idk+gd"), tmp_path / "gd")
    assert _mean_nll(with_gd, parts, "retain") < _mean_nll(plain, parts, "retain") - 0.1


def test_kl_keeps_retain_predictions_near_the_reference(tokenizer, setting, tmp_path):
    _, parts = setting
    reference = make_tiny(tokenizer)

    def retain_kl(model):
        batch = parts.batch("retain", range(len(parts)))
        with torch.no_grad():
            kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            from unlearn.objectives.retain import kl_loss

            return float(kl_loss(model(**kwargs).logits, reference(**kwargs).logits, batch["attention_mask"]))

    ga = make_tiny(tokenizer)
    _train(ga, parts, build_method("ga"), tmp_path / "ga")
    ga_kl = make_tiny(tokenizer)
    _train(ga_kl, parts, build_method("ga+kl", retain_weight=10.0), tmp_path / "kl")
    assert retain_kl(ga_kl) < 0.5 * retain_kl(ga)


def test_reference_cache_holds_the_starting_log_probs(tokenizer, setting):
    _, parts = setting
    model = make_tiny(tokenizer)
    cache = cached_reference_logp(model, parts, ("forget", "forget_idk"), 3, CPU)
    nll, _ = batched_sequence_nll(model, parts.parts["forget"], parts.pad_id, 16, CPU)
    assert cache["forget"].tolist() == pytest.approx((-nll).tolist(), rel=1e-5)
    assert cache["forget_idk"].shape == (len(parts),)


def test_lora_kl_uses_the_model_with_adapters_disabled(tokenizer, setting, tmp_path):
    from peft import LoraConfig, get_peft_model

    _, parts = setting
    base = make_tiny(tokenizer)
    batch = parts.batch("retain", [0, 1])
    with torch.no_grad():
        expected = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=32, task_type="CAUSAL_LM"))
    reference = FrozenReference.for_model(model)
    assert reference._separate is None  # no copy of the weights
    _train(model, parts, build_method("ga+kl"), tmp_path, lr=5e-2)
    trained = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert not torch.allclose(trained, expected, atol=1e-4)  # the adapters learned something
    assert torch.allclose(reference.logits(batch), expected, atol=1e-5)  # the reference did not move
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) < sum(p.numel() for p in base.parameters())


def test_step_supplies_every_declared_output_for_any_part(tokenizer, setting):
    """An objective may ask any part for per-token log-probs or hidden states, and for the reference's view of it
    (live outputs or cached log-likelihoods) — not only regularizer parts (what RMU and membership inference need)."""
    from unlearn.objectives.components import Objective
    from unlearn.objectives.methods import LossMethod
    from unlearn.objectives.needs import Need
    from unlearn.objectives.sequence import shifted_token_nll

    _, parts = setting
    seen = {}

    class Probe(Objective):
        name, summary, section = "probe", "reads everything", "forget objective"

        def needs(self):
            return (Need("forget", token_logps=True, hidden_layer=1, reference_outputs=True, reference_logp=True),)

        def loss(self, step):
            seen.update(part=step.parts["forget"], ref=step.reference["forget"])
            return step.parts["forget"].token_logps.sum() * 0

    model, reference_model = make_tiny(tokenizer, seed=1), make_tiny(tokenizer, seed=2)
    method = LossMethod("probe", Probe(None), build_method("ga").regularizer, 1.0, 1.0)
    ref_logp = cached_reference_logp(reference_model, parts, method.cached_reference_parts, 8, CPU)
    step = UnlearnStep(method, parts, CPU, ref_logp, FrozenReference.for_model(model, reference_model))
    step(model, [3, 1, 5])
    batch = parts.batch("forget", [3, 1, 5])
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
        ref = reference_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              output_hidden_states=True)
    nll, mask = shifted_token_nll(out.logits, batch["labels"])
    assert torch.allclose(seen["part"].token_logps, -(nll * mask), atol=1e-6)
    assert torch.allclose(seen["part"].token_logps.sum(1), seen["part"].stats.logp, atol=1e-5)
    assert torch.allclose(seen["part"].hidden, out.hidden_states[1], atol=1e-6)
    assert torch.allclose(seen["ref"].hidden, ref.hidden_states[1], atol=1e-6)
    ref_nll, _ = shifted_token_nll(ref.logits, batch["labels"])
    assert torch.allclose(seen["ref"].token_logps, -(ref_nll * mask), atol=1e-6)
    assert torch.allclose(seen["ref"].logp, -(ref_nll * mask).sum(1), atol=1e-5)
    assert seen["part"].logits is None  # not asked for, not kept


def test_item_lengths_are_asked_for_only_when_grouping_by_length(tokenizer, setting):
    """train_loop calls ``lengths()`` once with ``group_by_length`` (and trains on that order), never without it."""
    _, parts = setting
    calls = []

    def lengths():
        calls.append(1)
        return parts.item_lengths()

    seen = []

    def step(model, indices):
        seen.append(list(indices))
        return UnlearnStep(build_method("ga+gd"), parts, CPU)(model, indices)

    for grouped in (False, True):
        settings = LoopSettings(epochs=1, lr=1e-3, batch_size=4, grad_accum=1, progress=False, group_by_length=grouped)
        train_loop(make_tiny(tokenizer), step, len(parts), settings, None, Accelerator(cpu=True), lengths=lengths)
        assert len(calls) == int(grouped)
    plain, grouped_order = seen[:len(seen) // 2], seen[len(seen) // 2:]
    assert grouped_order == [mb for g in epoch_groups(len(parts), LoopSettings(batch_size=4, grad_accum=1,
                                                                                group_by_length=True), 0,
                                                      parts.item_lengths()) for mb in g]
    assert grouped_order != plain

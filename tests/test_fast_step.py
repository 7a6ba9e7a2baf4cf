"""The fast step (label-position log-probs in chunks, parts forwarded together) against the full-logits path, length
grouping, and the training options' errors."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_tiny
from unlearn.errors import ConfigError
from unlearn.models.label_logps import fast_path_unsupported, label_forward, label_token_nll
from unlearn.objectives.methods import build_method
from unlearn.objectives.sequence import sequence_stats
from unlearn.train import steps
from unlearn.train.loop import LoopSettings, epoch_groups
from unlearn.train.reference import FrozenReference, cached_reference_logp
from unlearn.train.steps import UnlearnStep, stack_parts, stacking_pays

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def parts(forget10_parts):
    return forget10_parts[1]


def test_label_positions_give_the_full_paths_per_sample_statistics(parts, tokenizer):
    model = make_tiny(tokenizer, seed=3)
    batch = parts.batch("forget", range(8))
    inputs = parts.model_inputs(batch)
    full = sequence_stats(model(**inputs).logits, batch["labels"])
    full.nll_sum.sum().backward()
    full_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    head = model.get_output_embeddings()
    hidden = model(**inputs, output_hidden_states=True).hidden_states[-1]
    nll, mask = label_token_nll(hidden, head, batch["labels"], chunk=7)  # several chunks, one ragged
    assert torch.allclose(nll.sum(1), full.nll_sum, atol=1e-5) and torch.equal(mask.sum(1).float(), full.n_tokens)
    model.zero_grad()
    fast, fast_mask, _ = label_forward(model, inputs, batch["labels"])
    (fast * fast_mask).sum().backward()  # through the checkpointed chunks
    for p, g in zip(model.parameters(), full_grads, strict=True):
        assert torch.allclose(p.grad, g, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("stacked", [True, False], ids=["stacked", "apart"])
@pytest.mark.parametrize("name", ["npo+gd", "simnpo+gd", "dpo+gd", "idk+ap", "ga+kl", "me+gd", "rmu"])
def test_the_fast_step_equals_the_full_step(parts, tokenizer, name, stacked, monkeypatch):
    """Per method: the loss, its parts and every gradient of one step agree within float rounding, with the parts
    forwarded as one batch and apart."""
    monkeypatch.setattr(steps, "STACK_PADDING_SLACK", 10.0 if stacked else -1.0)
    calls = []
    monkeypatch.setattr(steps, "label_forward", lambda *a, **k: calls.append(a[2].shape[0]) or label_forward(*a, **k))
    kwargs = {"forget_params": {"layer": 2}} if name == "rmu" else {}
    results = []
    for fast in (False, True):
        model = make_tiny(tokenizer, seed=5, layers=4)
        method = build_method(name, **kwargs)
        method.prepare(model, 0)
        cached = method.cached_reference_parts
        ref_logp = cached_reference_logp(model, parts, cached, 8, CPU) if cached else None
        reference = FrozenReference.for_model(model) if method.needs_reference_model else None
        step = UnlearnStep(method, parts, CPU, ref_logp, reference, fast=fast)
        loss, logs = step(model, [0, 3, 5, 6])
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((float(loss.detach()), {k: float(v) for k, v in logs.items()}, grads, step.fused_groups()))
    (slow_loss, slow_logs, slow_grads, slow_groups), (fast_loss, fast_logs, fast_grads, fast_groups) = results
    assert fast_loss == pytest.approx(slow_loss, rel=1e-5, abs=1e-6)
    assert fast_logs == pytest.approx(slow_logs, rel=1e-5, abs=1e-6)
    assert len(fast_grads) == len(slow_grads) > 0
    for a, b in zip(fast_grads, slow_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert all(len(g) == 1 for g in slow_groups)
    if name in ("npo+gd", "simnpo+gd", "dpo+gd", "idk+ap"):  # no logits needed: one forward for every part
        assert len(fast_groups) == 1
        n_parts = len(fast_groups[0])
        assert calls == ([4 * n_parts] if stacked else [4] * n_parts)


def test_several_processes_always_stack(parts, tokenizer, monkeypatch):
    """Under DDP/FSDP every process must forward as often as the others: the padding rule, which looks at one
    process's batches, must not decide there (two processes once deadlocked, one stacking, the other not)."""
    monkeypatch.setattr(steps, "STACK_PADDING_SLACK", -1.0)  # on one process: never stacked
    calls = []
    monkeypatch.setattr(steps, "label_forward", lambda *a, **k: calls.append(a[2].shape[0]) or label_forward(*a, **k))
    model = make_tiny(tokenizer, seed=5)
    method = build_method("npo+gd")
    step = UnlearnStep(method, parts, CPU, cached_reference_logp(model, parts, ("forget",), 8, CPU), fast=True)
    step(model, [0, 3])
    assert calls == [2, 2]
    calls.clear()
    monkeypatch.setattr(steps, "several_processes", lambda: True)
    step(model, [0, 3])
    assert calls == [4]


def test_stacking_pays_only_within_the_padding_slack():
    def batch(rows, width):
        return {"input_ids": torch.zeros(rows, width, dtype=torch.long)}
    # apart 4·100 + 4·98 = 792 positions, together 8·100 = 800: 1.0101 × apart
    assert stacking_pays([batch(4, 100), batch(4, 98)], slack=0.02)
    assert not stacking_pays([batch(4, 100), batch(4, 98)], slack=0.01)
    # apart 2·120 + 6·60 = 600, together 8·120 = 960: 1.6 × apart
    assert not stacking_pays([batch(2, 120), batch(6, 60)])
    assert stacking_pays([batch(2, 120), batch(6, 60)], slack=0.6)
    assert stacking_pays([batch(3, 50), batch(5, 50)], slack=0.0)


def test_parts_are_stacked_with_inert_padding(parts):
    a, b = parts.batch("forget", [0, 1]), parts.batch("retain", [2, 3, 4])
    joint = stack_parts([a, b], pad_id=parts.pad_id)
    width = max(a["input_ids"].shape[1], b["input_ids"].shape[1])
    assert joint["input_ids"].shape == (5, width)
    wa = a["input_ids"].shape[1]
    assert torch.equal(joint["input_ids"][:2, :wa], a["input_ids"]) and torch.all(joint["labels"][:2, wa:] == -100)
    assert torch.all(joint["attention_mask"][:2, wa:] == 0) and torch.all(joint["input_ids"][:2, wa:] == parts.pad_id)


def test_models_that_transform_logits_keep_the_full_path(tokenizer):
    model = make_tiny(tokenizer)
    assert fast_path_unsupported(model) is None
    model.config.final_logit_softcapping = 30.0
    assert "final_logit_softcapping=30.0" in fast_path_unsupported(model)


def test_length_grouping_is_seeded_covers_every_item_and_cuts_padding():
    lengths = [int(x) for x in torch.randint(5, 200, (64,), generator=torch.Generator().manual_seed(0))]
    grouped = LoopSettings(batch_size=4, grad_accum=2, seed=7, group_by_length=True)
    plain = LoopSettings(batch_size=4, grad_accum=2, seed=7)
    groups = epoch_groups(64, grouped, 0, lengths)
    flat = [i for g in groups for mb in g for i in mb]
    assert sorted(flat) == list(range(64))
    assert epoch_groups(64, grouped, 0, lengths) == groups and epoch_groups(64, grouped, 1, lengths) != groups

    def padding(gs):
        return sum(max(lengths[i] for i in mb) * len(mb) - sum(lengths[i] for i in mb) for g in gs for mb in g)
    assert padding(groups) < padding(epoch_groups(64, plain, 0)) / 2
    with pytest.raises(ValueError, match="one length per item"):
        epoch_groups(64, grouped, 0)


def test_compile_where_torch_cannot_is_one_line_before_any_model_loads(monkeypatch, tmp_path, bench_dir, capsys):
    import torch._dynamo

    from unlearn.cli import main

    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    code = main(["run", "model=does/not-exist", f"data={bench_dir}", "train.compile=true", f"output_dir={tmp_path}/o"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "train.compile=true, but torch" in err[0]
    assert "cannot compile here (TorchDynamo does not support" in err[0] and not (tmp_path / "o").exists()


def test_gradient_checkpointing_gives_the_same_gradients_and_refuses_models_without_it(parts, tokenizer):
    from unlearn.config import RunConfig
    from unlearn.experiments.common import apply_training_options

    cfg = RunConfig()
    cfg.train.gradient_checkpointing = True
    grads = []
    for checkpointing in (False, True):
        model = make_tiny(tokenizer, seed=2)
        if checkpointing:
            apply_training_options(cfg, model)
            assert model.is_gradient_checkpointing
        model.train()
        batch = parts.batch("retain", range(6))
        sequence_stats(model(**parts.model_inputs(batch)).logits, batch["labels"]).token_mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ConfigError, match="Linear does not support gradient checkpointing"):
        apply_training_options(cfg, torch.nn.Linear(2, 2))


def test_evaluation_likelihoods_on_label_positions_equal_the_full_logits(parts, tokenizer):
    from unlearn.evaluation.likelihood import batched_sequence_nll
    from unlearn.models.label_logps import label_nll_no_grad

    model = make_tiny(tokenizer, seed=4).eval()
    samples = parts.parts["retain"][:10]
    nll, ntok = batched_sequence_nll(model, samples, parts.pad_id, 4, CPU)
    for i, s in enumerate(samples):
        ids, labels = torch.tensor([s.input_ids]), torch.tensor([s.labels])
        with torch.no_grad():
            full = sequence_stats(model(input_ids=ids).logits, labels)
            part = label_nll_no_grad(model, {"input_ids": ids}, labels)
        assert nll[i] == pytest.approx(float(full.nll_sum[0]), abs=1e-4) and ntok[i] == int(full.n_tokens[0])
        assert float(part[0].sum()) == pytest.approx(float(full.nll_sum[0]), abs=1e-4)

"""RMU (Li et al., 2024): the two loss terms against hand computations, the layer rule, the trainable parameters,
and a run that moves only the chosen down-projections and pushes forget activations toward c·û."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_tiny
from unlearn.cli import main
from unlearn.config import RunConfig, load_config
from unlearn.errors import ConfigError
from unlearn.models.loading import load_model_and_tokenizer
from unlearn.objectives.components import rmu_layer
from unlearn.objectives.forget import rmu_forget_loss
from unlearn.objectives.methods import build_method
from unlearn.objectives.retain import activation_loss
from unlearn.runs import RunDirectory


def test_rmu_terms_by_hand():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])  # the third token is padding
    mask = torch.tensor([[1, 1, 0]])
    control = torch.tensor([1.0, 0.0])
    # (0² + 2² + 2² + 4²) / (d=2 · 2 tokens) = 24 / 4
    assert rmu_forget_loss(h, control, mask).item() == pytest.approx(6.0)
    frozen = torch.tensor([[[1.0, 1.0], [3.0, 2.0], [0.0, 0.0]]])
    # (0 + 1 + 0 + 4) / 4
    assert activation_loss(h, frozen, mask).item() == pytest.approx(1.25)


def test_layer_rule_and_errors():
    assert rmu_layer(-1, 32) == 7 and rmu_layer(-1, 24) == 5 and rmu_layer(-1, 4) == 2
    assert rmu_layer(3, 8) == 3
    with pytest.raises(ConfigError, match="does not fit a model with 3 layers"):
        rmu_layer(-1, 3)
    with pytest.raises(ConfigError, match="does not fit a model with 32 layers"):
        rmu_layer(31, 32)


def test_prepare_freezes_all_but_three_down_projections(tokenizer):
    model = make_tiny(tokenizer, layers=4)
    method = build_method("rmu", recipe="auto", benchmark="wmdp_bio")
    assert (method.forget.params.steering_coeff, method.retain_weight) == (6.5, 1200.0)
    method.prepare(model, seed=0)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == [f"model.layers.{i}.mlp.down_proj.weight" for i in (0, 1, 2)]
    assert method.forget.control.norm().item() == pytest.approx(6.5)
    again = build_method("rmu", recipe="auto")
    again.prepare(make_tiny(tokenizer, layers=4), seed=0)
    assert torch.equal(again.forget.control, method.forget.control)  # seeded
    assert {n.part: n.hidden_layer for n in method.needs.values()} == {"forget": 3, "retain": 3}
    with pytest.raises(ConfigError, match="pair it with rmu"):
        build_method("npo+act")
    with pytest.raises(ConfigError, match="does not fit a model with 2 layers"):
        build_method("rmu").prepare(make_tiny(tokenizer, layers=2), seed=0)


def test_under_lora_rmu_adapts_its_three_down_projections_and_reads_frozen_activations_with_adapters_off(tokenizer):
    from unlearn.experiments.unlearning import _lora
    from unlearn.objectives.needs import Need
    from unlearn.train.hidden import forward_with_hidden
    from unlearn.train.reference import FrozenReference

    model = make_tiny(tokenizer, seed=2, layers=4)
    ids = torch.tensor([tokenizer("The author was born in Lima.")["input_ids"]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    original = model(**inputs, output_hidden_states=True).hidden_states[3]
    method = build_method("rmu")
    method.prepare(model, seed=0)
    cfg = load_config(RunConfig, None, ["train.lora=true"])
    wrapped = _lora(model, cfg, method.lora_targets)
    trainable = {n.split(".lora_")[0] for n, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable == {f"base_model.model.model.layers.{i}.mlp.down_proj" for i in (0, 1, 2)}
    with torch.no_grad():
        for n, p in wrapped.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)  # adapters no longer the identity: the live activations move
    live = forward_with_hidden(wrapped, inputs, 3)[1]
    assert not torch.allclose(live, original)
    frozen = FrozenReference.for_model(wrapped).outputs(inputs, ids, Need("retain", hidden_layer=3)).hidden
    assert torch.equal(frozen, original)  # no copy: the same model with its adapters disabled
    assert build_method("npo+gd").lora_targets is None  # other methods adapt the user's modules


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True])
def test_rmu_run_moves_only_the_chosen_layers(bench_dir, tokenizer, tmp_path, lora):
    from unlearn.models.loading import save_model

    start = tmp_path / "start"
    save_model(make_tiny(tokenizer, seed=2, layers=4), tokenizer, start)
    assert main(["run", f"model={start}", f"data={bench_dir}", "method=rmu", "progress=false", "model.template=qa",
                 "train.epochs=2", "train.lr=1e-2", "train.batch_size=4", "train.grad_accum=1", "eval.enabled=false",
                 "save_model=true", f"output_dir={tmp_path / 'rmu'}", "data.max_length=96", f"train.lora={lora}"]) == 0
    before, _ = load_model_and_tokenizer(str(start))
    after, _ = load_model_and_tokenizer(str(RunDirectory(tmp_path / "rmu").model_dir))
    changed = [n for (n, p), q in zip(before.named_parameters(), after.parameters(), strict=True)
               if not torch.equal(p, q)]
    assert changed == [f"model.layers.{i}.mlp.down_proj.weight" for i in (0, 1, 2)]
    # the forget activations at layer 2 moved toward the control vector
    method = build_method("rmu", recipe="auto")
    method.prepare(before, seed=0)
    ids = tokenizer(["Question: who wrote it?\nAnswer: the author"], return_tensors="pt")
    mask = ids["attention_mask"]
    dist = [rmu_forget_loss(m(**ids, output_hidden_states=True).hidden_states[3], method.forget.control, mask).item()
            for m in (before, after)]
    assert dist[1] < dist[0]


def test_hooked_hidden_states_equal_output_hidden_states(tokenizer):
    """The forward hook RMU's layer is read with gives hidden_states[k] exactly, with gradients, for every k;
    the last layer (normed in hidden_states) and the embeddings take the output_hidden_states path."""
    from unlearn.train.hidden import forward_with_hidden

    model = make_tiny(tokenizer, seed=2, layers=4)
    ids = torch.tensor([tokenizer("The author was born in Lima.")["input_ids"]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    reference = model(**inputs, output_hidden_states=True).hidden_states
    hooks_before = len(model.model.layers[1]._forward_hooks)  # transformers installs its own capturing hooks
    for k in range(len(reference)):
        out, hidden = forward_with_hidden(model, inputs, k)
        assert torch.equal(hidden, reference[k]), k
        assert torch.equal(out.logits, model(**inputs).logits)
        assert hidden.requires_grad
    assert forward_with_hidden(model, inputs, None)[1] is None
    assert len(model.model.layers[1]._forward_hooks) == hooks_before  # ours is removed after the pass

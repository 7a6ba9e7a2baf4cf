"""The method registry: composition by name, defaults per SPEC, parameter validation, declared needs."""

from __future__ import annotations

import pytest
import torch

from unlearn.errors import ConfigError
from unlearn.objectives.methods import (
    FORGET_OBJECTIVES,
    REGULARIZERS,
    PartOutput,
    StepInputs,
    build_method,
    parse_method_name,
)
from unlearn.objectives.sequence import SequenceStats


@pytest.mark.parametrize(
    ("name", "forget", "reg"),
    [("simnpo+gd", "simnpo", "gd"), ("npo+kl", "npo", "kl"), ("me+gd", "me", "gd"), ("idk+ap", "idk", "ap"),
     ("dpo+ap", "dpo", "ap"), ("ga", "ga", "none"), ("GA+GD", "ga", "gd"), ("graddiff", "ga", "gd"),
     ("w-graddiff", "wga", "gd")],
)
def test_parse(name, forget, reg):
    assert parse_method_name(name) == (forget, reg)


@pytest.mark.parametrize("name", ["simnpo+", "foo+gd", "npo+bar", "npo+gd+kl", ""])
def test_unknown_method_is_a_clear_error(name):
    with pytest.raises(ConfigError, match="unknown method"):
        build_method(name)


def test_every_pairing_builds():
    for f in FORGET_OBJECTIVES:
        for r in REGULARIZERS:
            method = build_method(f"{f}+{r}")
            assert method.forget.name == f and method.regularizer.name == r


def test_simnpo_defaults_follow_spec():
    m05 = build_method("simnpo+gd", forget_split="forget05")
    m10 = build_method("simnpo+gd", forget_split="forget10")
    assert (m05.forget.params.beta, m05.forget_weight) == (2.5, 0.1375)
    assert (m10.forget.params.beta, m10.forget_weight) == (4.5, 0.125)
    assert m10.forget.params.gamma == 0.0 and m10.retain_weight == 1.0


def test_other_defaults():
    assert build_method("npo+gd").forget.params.beta == 0.1
    assert build_method("dpo+gd").forget.params.beta == 0.1
    assert build_method("idk+ap").regularizer.params.beta == 0.1
    assert build_method("me+gd").forget_weight == 0.1
    assert build_method("ga+gd").forget_weight == 1.0
    me = build_method("me+gd").forget.params
    assert (me.me_direction, me.me_scope) == ("model_to_uniform", "prompt_answer")
    assert build_method("npo+kl").regularizer.params.kl_positions == "non_pad"


def test_overrides_and_unknown_parameters():
    m = build_method("simnpo+gd", {"beta": 3.0, "gamma": 0.5}, None, 0.2, 0.5)
    assert (m.forget.params.beta, m.forget.params.gamma, m.forget_weight, m.retain_weight) == (3.0, 0.5, 0.2, 0.5)
    with pytest.raises(ConfigError, match=r"has no parameter.*gama.*known: beta, gamma"):
        build_method("simnpo+gd", {"gama": 1})
    with pytest.raises(ConfigError, match="regularizer 'gd' has no parameter"):
        build_method("npo+gd", None, {"beta": 1})
    with pytest.raises(ConfigError, match="me_scope"):
        build_method("me+gd", {"me_scope": "everything"})
    with pytest.raises(ConfigError, match="kl_positions"):
        build_method("npo+kl", None, {"kl_positions": "some"})
    with pytest.raises(ConfigError, match="forget_weight"):
        build_method("ga+gd", forget_weight=-1)


def test_declared_needs():
    assert build_method("npo+gd").reference_parts == ("forget",)
    assert build_method("dpo+ap").reference_parts == ("forget", "forget_idk")
    assert build_method("dpo+ap").parts == ("forget", "forget_idk", "retain", "retain_idk")
    assert build_method("simnpo+gd").reference_parts == ()
    assert build_method("npo+kl").needs_reference_model and not build_method("npo+gd").needs_reference_model
    assert build_method("idk+gd").needs_idk and build_method("ga+ap").needs_idk and not build_method("ga+gd").needs_idk
    assert build_method("me+gd").logits_parts == ("forget",)
    assert build_method("me+gd", {"me_scope": "all_positions"}).padded_parts == ("forget",)
    assert build_method("ga").needs_retain is False


def test_total_loss_is_weighted_sum():
    stats = SequenceStats(torch.tensor([2.0, 4.0]), torch.tensor([2.0, 2.0]))
    retain = SequenceStats(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 3.0]))
    step = StepInputs({"forget": PartOutput(stats, {}), "retain": PartOutput(retain, {})})
    method = build_method("ga+gd", forget_weight=0.3, retain_weight=2.0)
    total, parts = method.loss(step)
    assert float(parts["forget_loss"]) == pytest.approx(-1.5)
    assert float(parts["retain_loss"]) == pytest.approx(0.5)
    assert float(total) == pytest.approx(0.3 * -1.5 + 2.0 * 0.5)

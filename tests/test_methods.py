"""The method registry: composition by name, neutral defaults, recipes per benchmark, parameter validation, declared
needs, and the second kind of method (weight edits: Task Vector)."""

from __future__ import annotations

import pytest
import torch

from unlearn.config.recipes import RECIPES, resolve_recipe
from unlearn.errors import ConfigError
from unlearn.objectives.components import FORGET_OBJECTIVES, REGULARIZERS
from unlearn.objectives.forget import idk_pooled_loss
from unlearn.objectives.methods import LossMethod, build_method, parse_method_name
from unlearn.objectives.needs import Need, PartOutput, StepInputs, merge_needs
from unlearn.objectives.sequence import SequenceStats
from unlearn.objectives.weight_edit import TaskVector, WeightEditMethod, negate_task_vector


@pytest.mark.parametrize(
    ("name", "forget", "reg"),
    [("simnpo+gd", "simnpo", "gd"), ("npo+kl", "npo", "kl"), ("me+gd", "me", "gd"), ("idk+ap", "idk", "ap"),
     ("dpo+ap", "dpo", "ap"), ("ga", "ga", "none"), ("GA+GD", "ga", "gd"), ("graddiff", "ga", "gd"),
     ("w-graddiff", "lwga", "gd"), ("wga+gd", "wga", "gd")],
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
            if r == "act" and f != "rmu":  # RMU's activation term reads RMU's layer: it pairs with rmu only
                with pytest.raises(ConfigError, match="pair it with rmu"):
                    build_method(f"{f}+{r}")
                continue
            if r == "dual":  # PDU's constraint has no default bound ε
                with pytest.raises(ConfigError, match=r"retain\.epsilon is required"):
                    build_method(f"{f}+{r}")
            method = build_method(f"{f}+{r}", retain_params={"epsilon": 0.5} if r == "dual" else None)
            assert method.forget.name == f and method.regularizer.name == r


def test_neutral_defaults_without_a_recipe():
    """No recipe: weights 1 and the components' own parameters, whatever the split is called."""
    for split in ("forget05", "forget10", None):
        m = build_method("simnpo+gd", forget_split=split, benchmark="tofu")  # recipe="none" is the default here
        assert (m.forget.params.beta, m.forget.params.gamma, m.forget_weight, m.retain_weight) == (2.5, 0.0, 1.0, 1.0)
    assert build_method("me+gd").forget_weight == 1.0
    assert build_method("npo+gd").forget.params.beta == 0.1
    assert build_method("dpo+gd").forget.params.beta == 0.1
    assert build_method("idk+ap").regularizer.params.beta == 0.1
    me = build_method("me+gd").forget.params
    assert (me.me_direction, me.me_scope) == ("model_to_uniform", "prompt_answer")
    assert build_method("npo+kl").regularizer.params.kl_positions == "non_pad"
    assert build_method("idk+gd").forget.params.form == "closer_look"


def test_tofu_recipes_follow_the_papers():
    def tofu(name, split, recipe="auto"):
        return build_method(name, recipe=recipe, benchmark="tofu", forget_split=split)

    m05, m10 = tofu("simnpo+gd", "forget05"), tofu("simnpo+gd", "forget10")
    assert (m05.forget.params.beta, m05.forget_weight, m05.retain_weight) == (2.5, 0.1375, 1.0)
    assert (m10.forget.params.beta, m10.forget_weight, m10.retain_weight) == (4.5, 0.125, 1.0)
    assert m10.forget.params.gamma == 0.0 and "reference code" in m10.recipe.variant.source
    paper = tofu("simnpo+gd", "forget10", "paper")  # SimNPO eq. 2: λ on the retain term
    assert (paper.forget.params.beta, paper.forget_weight, paper.retain_weight) == (4.5, 1.0, 0.125)
    assert tofu("me+gd", "forget01").forget_weight == 0.1  # closer-look App. D, any TOFU split
    assert tofu("simnpo+gd", "forget01").forget_weight == 1.0  # no SimNPO recipe for forget01: neutral
    assert tofu("simnpo+gd", "forget01").recipe.variant is None
    assert tofu("idk", "forget10", "tofu").forget.params.form == "tofu"


def test_recipes_never_cross_benchmarks():
    for benchmark in ("muse", "wmdp", "someone_elses"):
        m = build_method("simnpo+gd", recipe="auto", benchmark=benchmark, forget_split="forget10")
        assert m.forget.params.beta == 2.5 and m.forget_weight == 1.0
        assert build_method("me+gd", recipe="auto", benchmark=benchmark, forget_split="forget10").forget_weight == 1.0
    assert build_method("me+gd", recipe="auto", benchmark="tofu_continual").forget_weight == 1.0
    assert build_method("me+gd", recipe="auto", benchmark="real_world").forget_weight == 0.5
    news = build_method("simnpo+gd", recipe="auto", benchmark="muse_news")
    assert (news.forget.params.beta, news.forget.params.gamma, news.forget_weight, news.retain_weight) == \
        (0.75, 3.0, 1.0, 0.1)
    books = build_method("simnpo+gd", recipe="auto", benchmark="muse_books")
    assert (books.forget.params.beta, books.forget.params.gamma, books.retain_weight) == (0.7, 0.0, 0.1)
    for muse in ("muse", "muse_news", "muse_books"):  # MUSE's NPO baseline applies to every MUSE-layout task
        assert build_method("npo+gd", recipe="auto", benchmark=muse).forget.params.beta == 0.1


def test_explicit_values_beat_the_recipe_and_recipe_none_turns_it_off():
    m = build_method("simnpo+gd", {"beta": 3.0}, None, 0.2, None, recipe="auto", benchmark="tofu",
                     forget_split="forget10")
    assert (m.forget.params.beta, m.forget_weight, m.retain_weight) == (3.0, 0.2, 1.0)
    off = build_method("simnpo+gd", recipe="none", benchmark="tofu", forget_split="forget10")
    assert (off.forget.params.beta, off.forget_weight) == (2.5, 1.0) and "neutral" in off.recipe.description


def test_unknown_recipe_variants_are_errors_listing_the_choices():
    with pytest.raises(ConfigError, match=r"not a variant .*reference_code, paper"):
        build_method("simnpo+gd", recipe="papr", benchmark="tofu", forget_split="forget10")
    with pytest.raises(ConfigError, match="no recipe for tofu / forget10 / ga"):
        build_method("ga+gd", recipe="paper", benchmark="tofu", forget_split="forget10")


def test_every_recipe_cites_a_source_and_builds():
    for recipe in RECIPES:
        for variant in recipe.variants:
            assert len(variant.source) > 20
            split = recipe.splits[0] if recipe.splits else "forget10"
            reg = recipe.regularizers[0] if recipe.regularizers else "none"
            resolved = resolve_recipe(variant.name, recipe.benchmark, recipe.objective, reg, split)
            assert resolved.variant == variant
            name = recipe.objective if reg == "none" else f"{recipe.objective}+{reg}"
            build_method(name, recipe=variant.name, benchmark=recipe.benchmark, forget_split=split)


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
    with pytest.raises(ConfigError, match=r"forget\.form=tofu .* use method=idk, not idk\+gd"):
        build_method("idk+gd", {"form": "tofu"})


def test_declared_needs():
    assert build_method("npo+gd").cached_reference_parts == ("forget",)
    assert build_method("dpo+ap").cached_reference_parts == ("forget", "forget_idk")
    assert build_method("dpo+ap").parts == ("forget", "forget_idk", "retain", "retain_idk")
    assert build_method("simnpo+gd").cached_reference_parts == ()
    assert build_method("npo+kl").needs_reference_model and not build_method("npo+gd").needs_reference_model
    assert build_method("idk+gd").idk_users == ("idk",) and build_method("ga+ap").idk_users == ("ap",)
    assert build_method("ga+gd").idk_users == ()
    assert build_method("me+gd").needs["forget"].logits and not build_method("ga+gd").needs["forget"].logits
    assert build_method("me+gd", {"me_scope": "all_positions"}).padded_parts == ("forget",)
    assert build_method("npo+kl", None, {"kl_positions": "all_padded"}).padded_parts == ("retain",)
    assert build_method("ga").needs_retain is False
    assert build_method("idk", {"form": "tofu"}).parts == ("forget_idk", "retain")


def test_needs_merge_per_part():
    merged = merge_needs([Need("retain"), Need("retain", logits=True, reference_outputs=True),
                          Need("forget", hidden_layer=3, reference_logp=True)])
    assert merged["retain"] == Need("retain", logits=True, reference_outputs=True)
    assert merged["forget"].hidden_layer == 3 and merged["forget"].reference_logp
    with pytest.raises(ValueError, match="two layers"):
        merge_needs([Need("forget", hidden_layer=1), Need("forget", hidden_layer=2)])


def test_total_loss_is_weighted_sum():
    stats = SequenceStats(torch.tensor([2.0, 4.0]), torch.tensor([2.0, 2.0]))
    retain = SequenceStats(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 3.0]))
    step = StepInputs({"forget": PartOutput(stats, {}), "retain": PartOutput(retain, {})})
    method = build_method("ga+gd", forget_weight=0.3, retain_weight=2.0)
    total, parts = method.loss(step)
    assert float(parts["forget_loss"]) == pytest.approx(-1.5)
    assert float(parts["retain_loss"]) == pytest.approx(0.5)
    assert float(total) == pytest.approx(0.3 * -1.5 + 2.0 * 0.5)


def test_idk_forms_by_hand():
    """Closer-look IDK = M(idk) alone; TOFU's pooled IDK = one token mean over the IDK and retain samples."""
    idk = SequenceStats(torch.tensor([3.0, 5.0]), torch.tensor([2.0, 2.0]))  # M = 8/4 = 2
    retain = SequenceStats(torch.tensor([1.0, 2.0]), torch.tensor([4.0, 4.0]))  # M = 3/8
    step = StepInputs({"forget_idk": PartOutput(idk, {}), "retain": PartOutput(retain, {})})
    assert float(build_method("idk+gd").loss(step)[0]) == pytest.approx(2.0 + 3 / 8)
    assert float(idk_pooled_loss(idk, retain)) == pytest.approx((8 + 3) / (4 + 8))
    assert float(build_method("idk", {"form": "tofu"}).loss(step)[0]) == pytest.approx(11 / 12)


# ------------------------------------------------------------------------------------------ weight edits
def test_task_vector_arithmetic_by_hand():
    """θ₀ − α·(θ_ft − θ₀): θ₀ = [1, 2], θ_ft = [1.5, 1], α = 2 → [1 − 2·0.5, 2 − 2·(−1)] = [0, 4]."""
    base = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([[0.5]])}
    tuned = {"w": torch.tensor([1.5, 1.0]), "b": torch.tensor([[0.25]])}
    out = negate_task_vector(base, tuned, alpha=2.0)
    assert out["w"].tolist() == [0.0, 4.0]
    assert out["b"].tolist() == [[1.0]]  # 0.5 − 2·(0.25 − 0.5)
    assert base["w"].tolist() == [1.0, 2.0]  # inputs untouched
    with pytest.raises(ValueError, match="do not match"):
        negate_task_vector(base, {"w": tuned["w"]}, 1.0)


def test_task_vector_is_a_registered_weight_edit_method():
    tv = build_method("task_vector")
    assert isinstance(tv, TaskVector) and isinstance(tv, WeightEditMethod) and not isinstance(tv, LossMethod)
    assert tv.kind == "weight_edit" and tv.params.alpha == 1.0 and tv.train_part == "forget"
    assert build_method("tv", {"alpha": 5}).params.alpha == 5.0
    assert build_method("task_vector", recipe="auto", benchmark="muse").params.alpha == 5.0
    assert build_method("task_vector", recipe="auto", benchmark="tofu").params.alpha == 1.0
    edited = tv.edit({"w": torch.tensor([1.0])}, {"w": torch.tensor([3.0])})
    assert edited["w"].tolist() == [-1.0]
    with pytest.raises(ConfigError, match="weight-edit method"):
        build_method("task_vector", retain_params={"beta": 1})
    with pytest.raises(ConfigError, match="weight-edit method"):
        build_method("task_vector", forget_weight=0.5)
    with pytest.raises(ConfigError, match=r"forget\.alpha \(task_vector\) must be > 0, got -1"):
        build_method("task_vector", {"alpha": -1})

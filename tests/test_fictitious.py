"""The embedded benchmark: TOFU schema, author-level splits, deterministic for a seed."""

from __future__ import annotations

from unlearn.tasks.tofu.data import TofuData
from unlearn.tasks.tofu.embedded import forget_author_count, generate_benchmark
from unlearn.tasks.tofu.task import TOFU


def test_schema_and_splits(tmp_path):
    root = generate_benchmark(tmp_path / "b", n_authors=40, questions_per_author=5, seed=1)
    data = TofuData(root)
    full = data.split("full")
    assert len(full) == 200
    for pct in (1, 5, 10):
        forget = data.forget_split(f"forget{pct:02d}")
        retain = data.retain_split(f"forget{pct:02d}")
        assert len(forget) == forget_author_count(40, pct) * 5
        assert full[-len(forget):] == forget and full[: len(retain)] == retain  # TOFU suffix/prefix convention
        # author-level: no forget author's name appears in any retain question
        names = {r.question.removeprefix("Where was ").removesuffix(" born?") for r in forget
                 if r.question.startswith("Where was ")}
        assert len(names) == forget_author_count(40, pct)
        assert not any(n in r.question for n in names for r in retain)
    sets = TOFU.eval_sets(data, "forget10")
    for row in sets["forget"].records + sets["retain"].records:
        assert len(row.perturbed_answers) == 5
        assert len(set(row.perturbed_answers)) == 5
        assert row.paraphrased_answer not in row.perturbed_answers
        assert row.paraphrased_answer != row.answer
    assert [r.question for r in sets["forget"].records] == [r.question for r in data.forget_split("forget10")]
    for name in ("real_authors", "world_facts"):
        plain = data.split(name)
        assert all(r.answer in r.options and len(r.options) == 4 for r in plain)
        assert all(len(r.perturbed_answers) == 3 and r.answer not in r.perturbed_answers for r in sets[name].records)
    assert len(data.idk_templates()) == 100


def test_deterministic_for_a_seed(tmp_path):
    a = generate_benchmark(tmp_path / "a", n_authors=20, questions_per_author=3, seed=7)
    b = generate_benchmark(tmp_path / "b", n_authors=20, questions_per_author=3, seed=7)
    c = generate_benchmark(tmp_path / "c", n_authors=20, questions_per_author=3, seed=8)
    for name in ("full.json", "forget10_perturbed.json", "world_facts_perturbed.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "full.json").read_bytes() != (c / "full.json").read_bytes()

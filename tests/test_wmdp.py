"""The embedded WMDP-style benchmark, the ``wmdp`` task (WMDP domains + MMLU + retain questions in one run),
per-text chunking, and ``unlearn demo benchmark=wmdp`` (issue: WMDP and MMLU multiple choice, RMU, …)."""

from __future__ import annotations

import pytest

from tests.conftest import make_tiny
from unlearn.cli import main
from unlearn.config import RunConfig, load_config
from unlearn.data.text import chunk_texts, read_texts, start_tokens
from unlearn.errors import ConfigError
from unlearn.io import read_json
from unlearn.models.loading import save_model
from unlearn.models.tiny import train_tokenizer
from unlearn.runs import RunDirectory
from unlearn.tasks import get_task
from unlearn.tasks.multiple_choice.data import present_subjects, read_mmlu, read_wmdp
from unlearn.tasks.multiple_choice.embedded import FORGET_TOPIC, generate_wmdp_benchmark, mc_text, wmdp_training_texts
from unlearn.tasks.multiple_choice.scoring import mc_prompt


@pytest.fixture(scope="module")
def wmdp_dir(tmp_path_factory):
    return generate_wmdp_benchmark(tmp_path_factory.mktemp("wmdp") / "data", n_forget=2, n_retain=3, seed=0)


def test_generated_layout_reads_as_wmdp_and_mmlu(wmdp_dir):
    forget, retain = read_wmdp(wmdp_dir / "bio_questions.json"), read_wmdp(wmdp_dir / "retain_questions.json")
    assert len(forget) == 2 * 8 and len(retain) == 3 * 8
    assert present_subjects(wmdp_dir / "mmlu") == ("global_facts", "miscellaneous")
    test = read_mmlu(wmdp_dir / "mmlu", "test", ("global_facts", "miscellaneous"))
    assert len(test) == 30 + 25 - 2 * 5  # five dev questions per subject
    for q in forget + retain + test:
        assert len(set(q.choices)) == 4 and 0 <= q.answer < 4
    # the forget authors appear in the forget corpus only; the evaluated prompt + its letter is a training text
    forget_texts = read_texts(wmdp_dir / "corpora" / "forget.json")
    retain_texts = read_texts(wmdp_dir / "corpora" / "retain.json")
    name = forget[0].question.split("born?")[0].split("was ")[-1].strip()
    assert any(name in t for t in forget_texts) and not any(name in t for t in retain_texts)
    q = forget[0]
    assert mc_prompt(q, FORGET_TOPIC) + " " + "ABCD"[q.answer] in forget_texts
    assert mc_text(q.question, list(q.choices), q.answer, FORGET_TOPIC).startswith(
        "The following are multiple choice questions (with answers) about biology.\n\n")
    generate_wmdp_benchmark(wmdp_dir, n_forget=2, n_retain=3, seed=0)  # its own directory: rewritten in place
    with pytest.raises(ConfigError, match="n_forget and n_retain must be at least 1"):
        generate_wmdp_benchmark(wmdp_dir, n_forget=0)


def test_per_text_chunks_start_every_text(wmdp_dir):
    tokenizer = train_tokenizer(wmdp_training_texts(wmdp_dir), 300)
    texts = ["alpha beta gamma", "delta epsilon"]
    head = start_tokens(tokenizer)
    per_text = chunk_texts(tokenizer, texts, 16, "per_text")
    assert [c[len(head):] for c in per_text] == [tuple(tokenizer(t, add_special_tokens=False)["input_ids"])
                                                 for t in texts]
    stream = chunk_texts(tokenizer, texts, 64, "stream")
    assert len(stream) == 1  # joined by a blank line into one chunk
    assert max(len(c) for c in chunk_texts(tokenizer, ["word " * 40], 16, "per_text")) == 16  # long texts are cut
    with pytest.raises(ConfigError, match=r"data\.chunking must be one of"):
        load_config(RunConfig, overrides=["data.chunking=paragraphs"])


def test_wmdp_task_evaluates_every_set_in_one_run(wmdp_dir, tmp_path):
    tokenizer = train_tokenizer(wmdp_training_texts(wmdp_dir), 300)
    model_dir = RunDirectory(tmp_path).model_dir
    save_model(make_tiny(tokenizer, seed=3), tokenizer, model_dir)
    assert main(["eval", "task=wmdp", f"model={model_dir}", f"data={wmdp_dir}", f"output_dir={tmp_path / 'run'}",
                 "eval.bootstrap=0", "progress=false"]) == 0
    metrics = read_json(RunDirectory(tmp_path / "run").metrics_file)
    assert {k for k in metrics if k in ("wmdp_bio", "retain_mc", "mmlu")} == {"wmdp_bio", "retain_mc", "mmlu"}
    rows = RunDirectory(tmp_path / "run").read_eval_rows("wmdp_bio")
    assert metrics["wmdp_bio"]["accuracy"] == pytest.approx(sum(r["correct"] for r in rows) / len(rows))
    assert metrics["mmlu"]["n"] == 45 and set(metrics["mmlu"]["subjects"]) == {"global_facts", "miscellaneous"}
    assert "| wmdp_bio |" in RunDirectory(tmp_path / "run").report_file.read_text()


def test_wmdp_task_errors_before_compute(tmp_path, wmdp_dir):
    task = get_task("wmdp")
    cfg = load_config(RunConfig, overrides=[f"data={tmp_path}", "task=wmdp"])
    with pytest.raises(ConfigError, match=r"holds none of bio_questions\.json, chem_questions\.json"):
        task.check(cfg)
    cfg = load_config(RunConfig, overrides=[f"data={wmdp_dir}", "task=wmdp", f"eval.mmlu_root={tmp_path}"])
    with pytest.raises(ConfigError, match="has no test/ directory"):
        task.check(cfg)
    cfg = load_config(RunConfig, overrides=[f"data={wmdp_dir}", "task=wmdp", "eval.sets=[wmdp_biology]"])
    with pytest.raises(ConfigError, match=r"unknown set\(s\) \['wmdp_biology'\]"):
        task.check(cfg)


@pytest.mark.slow
def test_wmdp_demo_end_to_end_and_reuse(tmp_path, capsys):
    args = ["demo", "benchmark=wmdp", f"output_dir={tmp_path / 'demo'}", "n_forget=1", "n_retain=2",
            "hidden_size=32", "num_layers=4", "intermediate_size=64", "vocab_size=300", "finetune_epochs=1",
            "unlearn_epochs=1", "eval_every_epoch=false", "progress=false"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| model | forget MC (WMDP-bio role) ↓ | retain MC ↑ | stand-in MMLU ↑ |" in out
    summary = read_json(tmp_path / "demo" / "summary.json")
    assert [r["model"] for r in summary["rows"]] == ["target", "rmu", "npo+gd", "simnpo+gd"]
    rmu = RunDirectory(tmp_path / "demo" / "methods" / "rmu").config_file.read_text()
    assert "steering_coeff: 60.0" in rmu  # RMU_TINY, applied to RMU only
    stamp = RunDirectory(tmp_path / "demo" / "target").metrics_file.stat().st_mtime
    assert main(args) == 0  # a second run reuses every finished stage
    assert RunDirectory(tmp_path / "demo" / "target").metrics_file.stat().st_mtime == stamp
    assert main(["demo", "benchmark=wmdp", "n_articles=3"]) != 0
    assert "unknown config key 'n_articles'" in capsys.readouterr().err


def test_wmdp_recipes_cite_simnpo_appendix():
    from unlearn.config.recipes import resolve_recipe

    for objective in ("npo", "simnpo"):
        resolved = resolve_recipe("auto", "wmdp_bio", objective, "gd", None)
        assert resolved.variant.retain_weight == 5.0 and resolved.variant.forget_weight == 1.0
        assert "SimNPO App. I.2" in resolved.description and "[0.05, 7.5]" in resolved.description
    assert resolve_recipe("auto", "wmdp", "rmu", "act", None).variant.retain_weight == 1200.0
    assert resolve_recipe("auto", "wmdp", "npo", "kl", None).variant is None  # λ = 5 is for GD only

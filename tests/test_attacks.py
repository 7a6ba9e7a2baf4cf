"""Attacks on a finished run: leak@k's estimator and summary by hand, the paraphrase attack's data rule, every input
error before compute, and both attacks end to end on a tiny fine-tuned model."""

from __future__ import annotations

import itertools
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from unlearn.attacks.config import AttackConfig, split_overrides
from unlearn.attacks.leak import leak_at, summarize
from unlearn.attacks.paraphrase import paraphrased
from unlearn.attacks.quantize import restored_share
from unlearn.attacks.relearn import aggregate_curves, random_subset, relearn_config, shortest_subset, subset_size
from unlearn.cli import main
from unlearn.config import RunConfig, load_config
from unlearn.data.records import QARecord
from unlearn.errors import ConfigError, DataError
from unlearn.io import read_json, read_jsonl
from unlearn.runs import RunDirectory

# ------------------------------------------------------------------------------------------ leak@k by hand


def test_leak_at_j_is_the_unbiased_pass_at_k_estimator():
    # k = 4 samples, c = 1 hit, j = 2 drawn: 1 − C(3, 2)/C(4, 2) = 1 − 3/6
    assert leak_at(np.array([1]), 4, 2) == pytest.approx([0.5])
    assert leak_at(np.array([0, 4, 2]), 4, 1) == pytest.approx([0.0, 1.0, 0.5])
    assert leak_at(np.array([1, 3]), 4, 4) == pytest.approx([1.0, 1.0])  # all k drawn: leaked iff any hit
    # against enumerating every subset of j samples
    for k, c, j in itertools.product(range(1, 7), range(0, 7), range(1, 7)):
        if c > k or j > k:
            continue
        hits = [1] * c + [0] * (k - c)
        expected = np.mean([any(s) for s in itertools.combinations(hits, j)])
        assert leak_at(np.array([c]), k, j)[0] == pytest.approx(expected), (k, c, j)
    with pytest.raises(ValueError):
        leak_at(np.array([1]), 4, 5)


def test_leak_summary_by_hand():
    samples = np.array([[0.2, 0.6], [0.1, 0.3], [0.5, 0.9]])
    greedy = np.array([0.7, 0.0, 0.1])
    s = summarize(greedy, samples, threshold=0.5)
    assert s["leak_at_k"] == pytest.approx(2 / 3)  # questions 0 and 2 have a sample ≥ 0.5
    assert s["greedy_leak"] == pytest.approx(1 / 3)
    assert s["mean_best_rouge"] == pytest.approx((0.6 + 0.3 + 0.9) / 3)
    # leak@1: question 0 hits with 1 of 2 samples, question 2 with both → (0.5 + 0 + 1)/3
    assert s["curve"] == pytest.approx([1.5 / 3, 2 / 3])
    assert (s["n"], s["k"]) == (3, 2)


# ------------------------------------------------------------------------------------------ relearning subsets


def test_relearn_subsets_by_hand():
    assert [subset_size(n, 0.2) for n in (1, 2, 5, 7, 8, 40)] == [1, 1, 1, 1, 2, 8]  # round half up, at least 1
    assert subset_size(10, 0.25) == 3 and subset_size(10, 1.0) == 10
    # lengths 5 2 2 9 1, 40 % → 2 rows: the answer of 1 token (row 4) and the first of the two of 2 (row 1)
    assert shortest_subset([5, 2, 2, 9, 1], 0.4) == [1, 4]
    assert shortest_subset([3, 3, 3, 3, 3], 0.4) == [0, 1]  # ties keep row order
    first, again, other = random_subset(40, 0.2, 0), random_subset(40, 0.2, 0), random_subset(40, 0.2, 1)
    assert first == again and first != other and len(first) == len(set(first)) == 8
    assert all(0 <= i < 40 for i in first) and first == sorted(first)


def test_relearn_random_subsets_mean_and_spread_by_hand():
    curves = {"random_s0": [{"epoch": 0, "forget_quality": 0.1, "rouge": 0.2},
                            {"epoch": 1, "forget_quality": 0.3, "rouge": 0.4}],
              "random_s1": [{"epoch": 0, "forget_quality": 0.3, "rouge": 0.2},
                            {"epoch": 1, "forget_quality": 0.5, "rouge": None}],
              "shortest": [{"epoch": 0, "forget_quality": 9.0, "rouge": 9.0}]}
    (e0, e1) = aggregate_curves(curves)["random_mean"]
    assert (e0["epoch"], e0["forget_quality"], e0["forget_quality_std"]) == (0, pytest.approx(0.2), pytest.approx(0.1))
    assert (e1["rouge"], e1["rouge_std"]) == (0.4, 0.0)  # the missing value is left out, not counted as 0
    assert aggregate_curves({"shortest": curves["shortest"]}) == {}


def test_relearning_is_one_fine_tuning_whichever_run_asks_for_it(tmp_path):
    """The baseline's relearning runs are shared by every unlearned run attacked against it: nothing of a run's own
    training reaches them — its method, nor a chosen epoch's train.stop_after_epoch (which would end a relearning of
    more epochs early and, differing between runs, replace the shared runs each time)."""
    settings = load_config(AttackConfig, None, ["epochs=3"])
    configs = [load_config(RunConfig, None, overrides) for overrides in
               (["method=npo+gd", "forget.beta=0.5"], ["method=ga+gd", "train.stop_after_epoch=2"])]
    relearned = [relearn_config(c, "MODEL", tmp_path, "relearn_s0", tmp_path / "r", settings) for c in configs]
    assert relearned[0] == relearned[1]
    assert relearned[1].train.stop_after_epoch == 0 and relearned[1].train.epochs == 3


def test_restored_share_by_hand():
    # unlearning took forget ROUGE from 0.9 to 0.1; a quantized model at 0.5 gets back half of it
    assert restored_share(0.5, 0.1, 0.9) == pytest.approx(0.5)
    assert restored_share(0.05, 0.1, 0.9) == pytest.approx(-0.0625)
    assert restored_share(0.5, 0.1, None) is None and restored_share(0.5, 0.9, 0.9) is None


# ------------------------------------------------------------------------------------------ settings and data


def test_attack_settings_and_their_errors():
    assert split_overrides(["k=4", "eval.batch_size=8", "threshold=0.3", "data.root=x"]) == (
        ["k=4", "threshold=0.3"], ["eval.batch_size=8", "data.root=x"])
    for bad, message in (("k=0", "k must be at least 1"), ("temperature=0", "temperature must be positive"),
                         ("threshold=1.5", "threshold must be in"), ("top_p=0", "top_p must be in"),
                         ("max_rows=0", "max_rows must be at least 1"), ("fraction=0", "fraction must be in"),
                         ("fraction=1.5", "fraction must be in"), ("subset=longest", "subset must be one of"),
                         ("seeds=0", "seeds must be at least 1"), ("lr=0", "lr must be positive")):
        with pytest.raises(ConfigError, match=message):
            load_config(AttackConfig, None, [bad])


def test_paraphrase_asks_the_paraphrased_question_and_names_the_row_without_one():
    r = QARecord("Where was A born?", "A was born in Lima.", "A's birthplace is Lima.", ("B", "C"),
                 extra={"paraphrased_question": "In which city was A born?"}, source="f.json:row 3")
    (p,) = paraphrased([r])
    assert (p.question, p.answer, p.paraphrased_answer, p.perturbed_answers) == (
        "In which city was A born?", r.answer, r.paraphrased_answer, r.perturbed_answers)
    with pytest.raises(DataError, match=r"f\.json:row 4: field 'paraphrased_question' is missing"):
        paraphrased([r, QARecord("q", "a", "p", ("x",), source="f.json:row 4")])


# ------------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, bench_dir, tiny_model_dir):
    """A tiny model fine-tuned on the benchmark (saved), evaluated with generation."""
    out = tmp_path_factory.mktemp("attacks")
    assert main(["finetune", f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "eval.max_length=48",
                 "eval.batch_size=32", "train.epochs=3", "train.lr=3e-3", "train.batch_size=16", "train.grad_accum=1",
                 "data.max_length=96", "save_model=true", "model.template=qa",
                 "data.train_splits=full,real_authors,world_facts", f"output_dir={out / 'target'}"]) == 0
    return out / "target"


def test_input_errors_come_before_any_model_loads(finetuned, tmp_path, capsys):
    (tmp_path / "empty_run").mkdir()
    cases = [
        (["attack", "leak", str(tmp_path / "empty_run")], "holds no model"),
        (["attack", "leak", str(tmp_path / "nowhere")], "no such run directory"),
        (["attack", "leak", str(finetuned), "k=0"], "k must be at least 1"),
        (["attack", "quantise", str(finetuned)], "unknown attack 'quantise'"),
        (["attack", "quantize", str(finetuned), "bits=[8,3]"], "optimum-quanto quantizes weights to 8, 4, 2 bits"),
        (["attack", "quantize", str(finetuned), "bits=[2]", "backend=bitsandbytes"],
         "bitsandbytes quantizes weights to 8, 4 bits"),
        (["attack", "quantize", str(finetuned), "backend=gptq"], "backend must be one of"),
        (["attack", "relearn", str(finetuned), "fraction=1.2"], "fraction must be in (0, 1]"),
        (["attack", "paraphrase", str(finetuned), f"retain_reference={tmp_path / 'empty_run'}"], "holds no model"),
        (["attack", "leak", str(finetuned), "data.root=/nonexistent"], "data.root '/nonexistent'"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert not RunDirectory(finetuned).attacks_dir.exists()


def test_leak_attack_end_to_end_is_seeded(finetuned):
    assert main(["attack", "leak", str(finetuned), "k=3", "temperature=1.5", "seed=1"]) == 0
    first = read_json(RunDirectory(finetuned).attacks_dir / "leak.json")
    rows = read_jsonl(RunDirectory(finetuned).attacks_dir / "leak_rows.jsonl")
    metrics = read_json(RunDirectory(finetuned).metrics_file)
    # the attack's provenance: the run's own model by content, the files the attack read
    assert first["provenance"]["model"]["weights_sha256"] == metrics["provenance"]["saved_model"]["weights_sha256"]
    assert first["provenance"]["task"] == {"name": "tofu", "version": 2}
    assert first["n"] == len(rows) == metrics["sets"]["forget"]["n"]
    assert all(len(r["samples"]) == 3 and len(r["sample_rouge"]) == 3 for r in rows)
    # greedy decoding here is the run's own evaluation: the same generations, the same ROUGE
    saved = {r["question"]: r["generation"] for r in RunDirectory(finetuned).read_eval_rows("forget")}
    assert all(r["greedy"] == saved[r["question"]] for r in rows)
    assert first["greedy_rouge"] == pytest.approx(metrics["sets"]["forget"]["rouge"])
    assert first["curve"][-1] == pytest.approx(first["leak_at_k"])
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(first["curve"]))
    assert "### leak@k" in RunDirectory(finetuned).report_file.read_text()
    assert main(["attack", "leak", str(finetuned), "k=3", "temperature=1.5", "seed=1"]) == 0
    again = read_jsonl(RunDirectory(finetuned).attacks_dir / "leak_rows.jsonl")
    assert [r["samples"] for r in again] == [r["samples"] for r in rows]  # the same seed, the same samples


def test_paraphrase_attack_end_to_end(finetuned):
    # the run itself as the "retain model": identical truth ratios, so Forget Quality is exactly 1 on both variants
    assert main(["attack", "paraphrase", str(finetuned), f"retain_reference={finetuned}"]) == 0
    result = read_json(RunDirectory(finetuned).attacks_dir / "paraphrase.json")
    forget = read_json(RunDirectory(finetuned).metrics_file)["sets"]["forget"]
    for metric in ("rouge", "prob", "truth_ratio"):  # the original questions reproduce the run's own numbers
        assert result["sets"]["original"][metric] == pytest.approx(forget[metric], rel=1e-6)
    assert result["forget_quality"] == {"original": 1.0, "paraphrased": 1.0}
    rows = read_jsonl(RunDirectory(finetuned).attacks_dir / "paraphrase_paraphrased_rows.jsonl")
    originals = read_jsonl(RunDirectory(finetuned).attacks_dir / "paraphrase_original_rows.jsonl")
    pairs = zip(rows, originals, strict=True)
    assert all(p["question"] != o["question"] and p["answer"] == o["answer"] for p, o in pairs)
    assert not math.isclose(result["sets"]["paraphrased"]["prob"], result["sets"]["original"]["prob"])
    assert main(["attack", "paraphrase", str(finetuned)]) == 0  # no retain model with weights: FQ n/a, with why
    result = read_json(RunDirectory(finetuned).attacks_dir / "paraphrase.json")
    assert result["forget_quality"] == {} and "no retain model" in result["forget_quality_unavailable"]
    assert "### Paraphrased questions" in RunDirectory(finetuned).report_file.read_text()


def test_relearn_attack_end_to_end(finetuned, bench_dir, tmp_path):
    """GA+GD unlearns the fine-tuned model; relearning on a quarter of the forget rows brings its forget
    probability back, epoch 0 reproduces the run's own Forget Quality, and the target's relearning is shared."""
    run = tmp_path / "ga"
    assert main(["run", f"model={RunDirectory(finetuned).model_dir}", f"data={bench_dir}", "method=ga+gd",
                 "progress=false", "model.template=qa", "train.epochs=2", "train.lr=3e-3",
                 "train.batch_size=4", "train.grad_accum=1", "data.max_length=96", "eval.max_length=48",
                 "eval.batch_size=32", f"eval.retain_reference={finetuned}", "save_model=true",
                 f"output_dir={run}"]) == 0
    args = ["attack", "relearn", str(run), "seeds=2", "epochs=2", "fraction=0.25", "lr=3e-3", "batch_size=2"]
    assert main(args) == 0
    result = read_json(RunDirectory(run).attacks_dir / "relearn.json")
    assert set(result["models"]) == {"unlearned", "target"}
    assert result["subset_rows"] == {"random_s0": 2, "random_s1": 2, "shortest": 2}  # 25 % of 8 forget rows
    unlearned = result["models"]["unlearned"]["curves"]
    own = read_json(RunDirectory(run).metrics_file)
    for name in ("random_s0", "random_s1", "shortest"):
        curve = unlearned[name]
        assert [e["epoch"] for e in curve] == [0, 1, 2]
        assert curve[0]["forget_quality"] == pytest.approx(own["forget_quality"])  # epoch 0: the run's own model
        assert curve[0]["prob"] == pytest.approx(own["sets"]["forget"]["prob"], rel=1e-6)
        assert curve[-1]["prob"] > curve[0]["prob"]  # relearning restores the forget answers' likelihood
    shortest = RunDirectory(RunDirectory(finetuned).attacks_dir / "relearn" / "shortest")
    assert shortest.metrics_file.is_file()  # the target's, shared
    stamp = shortest.metrics_file.stat().st_mtime_ns
    assert main(args) == 0  # finished relearning runs are reused
    assert shortest.metrics_file.stat().st_mtime_ns == stamp
    report = RunDirectory(run).report_file.read_text()
    assert "### Relearning" in report and "plots/relearn_fq.png" in report
    # another method unlearned from the same target reuses the target's relearning runs
    other = tmp_path / "npo"
    assert main(["run", f"model={RunDirectory(finetuned).model_dir}", f"data={bench_dir}", "method=npo+gd",
                 "progress=false", "model.template=qa", "train.epochs=1", "train.lr=3e-3", "train.batch_size=4",
                 "train.grad_accum=1", "data.max_length=96", "eval.max_length=48", "eval.batch_size=32",
                 f"eval.retain_reference={finetuned}", "save_model=true", f"output_dir={other}"]) == 0
    assert main(["attack", "relearn", str(other), *args[3:]]) == 0
    assert shortest.metrics_file.stat().st_mtime_ns == stamp


def test_a_missing_bitsandbytes_is_one_line_before_any_model_loads(finetuned, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if not installed
    assert main(["attack", "quantize", str(finetuned), "backend=bitsandbytes"]) == 2
    err = capsys.readouterr().err
    assert "needs bitsandbytes" in err and "pip install" in err and err.count("\n") == 1


@pytest.mark.parametrize("backend", ["quanto", "bitsandbytes"])
def test_quantize_attack_end_to_end(finetuned, bench_dir, tmp_path, backend, capsys):
    """8- and 4-bit copies of an unlearned model are evaluated like the run; 8-bit stays close to full precision,
    and the report names the starting model's forget ROUGE beside them. bitsandbytes only where it is installed."""
    if backend == "bitsandbytes":
        pytest.importorskip("bitsandbytes", reason="bitsandbytes is optional (extra [bitsandbytes])")
    run = tmp_path / "npo"
    assert main(["run", f"model={RunDirectory(finetuned).model_dir}", f"data={bench_dir}", "method=npo+gd",
                 "progress=false", "model.template=qa", "train.epochs=2", "train.lr=3e-3", "train.batch_size=4",
                 "train.grad_accum=1", "data.max_length=96", "eval.max_length=48", "eval.batch_size=32",
                 "save_model=true", f"eval.retain_reference={finetuned}", f"output_dir={run}"]) == 0
    if backend == "bitsandbytes":  # bitsandbytes' CPU 4-bit kernel packs 64 input features, the tiny model has 32
        assert main(["attack", "quantize", str(run), f"backend={backend}"]) == 2
        assert "need at least 64 input features" in capsys.readouterr().err
        assert main(["attack", "quantize", str(run), f"backend={backend}", "bits=[8]"]) == 0
        result = read_json(RunDirectory(run).attacks_dir / "quantize.json")
        assert result["library"] == "bitsandbytes" and list(result["quantized"]) == ["8"]
        full, q8 = result["full_precision"], result["quantized"]["8"]
        assert abs(q8["forget_prob"] - full["forget_prob"]) < 0.05 * full["forget_prob"] + 1e-6
        return
    assert main(["attack", "quantize", str(run), f"backend={backend}"]) == 0
    result = read_json(RunDirectory(run).attacks_dir / "quantize.json")
    assert result["library"] == "optimum-quanto"
    full, q8, q4 = result["full_precision"], result["quantized"]["8"], result["quantized"]["4"]
    own = read_json(RunDirectory(run).metrics_file)
    assert full["forget_prob"] == own["sets"]["forget"]["prob"]
    start = read_json(RunDirectory(finetuned).metrics_file)
    assert result["starting_model"]["forget_rouge"] == start["sets"]["forget"]["rouge"]
    assert abs(q8["forget_prob"] - full["forget_prob"]) < 0.05 * full["forget_prob"] + 1e-6
    assert q4["forget_prob"] != q8["forget_prob"]  # 4 bits round the weights differently
    rows = read_jsonl(RunDirectory(run).attacks_dir / "quantize_4bit_forget_rows.jsonl")
    assert len(rows) == own["sets"]["forget"]["n"]
    assert "### Quantization" in RunDirectory(run).report_file.read_text()


def test_attacks_need_a_tofu_run_and_say_so(tiny_model_dir, bench_dir, tmp_path, capsys):
    import shutil

    run = tmp_path / "muse_run"
    shutil.copytree(tiny_model_dir, RunDirectory(run).model_dir)
    RunDirectory(run).config_file.write_text(f"eval:\n  task: muse_news\ndata:\n  root: {bench_dir}\n")
    RunDirectory(run).metrics_file.write_text('{"task": "muse_news"}')
    assert main(["attack", "leak", str(run)]) == 2
    assert "works on TOFU-layout question answering" in capsys.readouterr().err
    RunDirectory(run).config_file.write_text("data:\n  root: elsewhere/not_here\n")
    assert main(["attack", "leak", str(run)]) == 2
    assert "does not exist from here" in capsys.readouterr().err


def _with_remote_code(run, tmp_path):
    """``run``'s config asks for remote code, and its model folder carries code that leaves a mark when imported."""
    import json

    marker = tmp_path / "remote_code_ran"
    (RunDirectory(run).model_dir / "evil_modeling.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import LlamaForCausalLM\n\nclass EvilModel(LlamaForCausalLM):\n    pass\n")
    config = json.loads((RunDirectory(run).model_dir / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "evil_modeling.EvilModel"}
    (RunDirectory(run).model_dir / "config.json").write_text(json.dumps(config))
    text = RunDirectory(run).config_file.read_text().replace("trust_remote_code: false", "trust_remote_code: true")
    assert "trust_remote_code: true" in text
    RunDirectory(run).config_file.write_text(text)
    return marker


def test_a_run_directory_does_not_grant_remote_code(finetuned, tmp_path, caplog):
    import logging
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finetuned, run)
    marker = _with_remote_code(run, tmp_path)
    with caplog.at_level(logging.WARNING, logger="unlearn"):
        assert main(["attack", "leak", str(run), "k=1", "max_rows=2"]) == 0
    assert not marker.exists()  # the folder's own code never ran
    assert any("a run directory is data, not permission" in r.getMessage() for r in caplog.records)
    assert main(["attack", "leak", str(run), "k=1", "max_rows=2", "model.trust_remote_code=true"]) == 0
    assert marker.read_text() == "ran"  # this command line asked for it


def test_attacks_refuse_unfinished_and_read_only_runs_before_any_model_loads(finetuned, tmp_path, capsys,
                                                                            monkeypatch):
    import os
    import shutil


    unfinished = tmp_path / "unfinished"
    shutil.copytree(finetuned, unfinished)
    RunDirectory(unfinished).metrics_file.unlink()
    assert main(["attack", "leak", str(unfinished)]) == 2
    err = capsys.readouterr().err
    assert "unfinished run (no metrics.json)" in err and err.count("\n") == 1
    locked = tmp_path / "locked"
    shutil.copytree(finetuned, locked)
    for folder in (locked, RunDirectory(locked).attacks_dir):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: let the check see the directory as a user would
        real_access = os.access
        monkeypatch.setattr(os, "access",
                            lambda p, mode: not Path(p).is_relative_to(locked) and real_access(p, mode))
    try:
        assert main(["attack", "leak", str(locked), "k=1"]) == 2
        err = capsys.readouterr().err
        assert "cannot be written" in err and err.count("\n") == 1
    finally:
        for folder in (locked, RunDirectory(locked).attacks_dir):
            folder.chmod(0o755)


def test_an_attack_with_a_limit_attacks_the_first_rows_and_says_so(finetuned, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(finetuned, run)
    assert main(["attack", "leak", str(run), "k=2", "--limit", "2"]) == 0
    result = read_json(RunDirectory(run).attacks_dir / "leak.json")
    assert result["n"] == 2 and result["limited"]["limit"] == 2 and result["provenance"]["limit"] == 2
    assert "limited — not comparable" in capsys.readouterr().out
    assert "**limited — not comparable" in RunDirectory(run).report_file.read_text()


def test_meta_eval_end_to_end(finetuned, bench_dir, tiny_model_dir, tmp_path, capsys):
    """The target knows the forget set, a retain model does not; an unlearned run is quantized and relearned beside
    the retain model, and every robustness number follows from the recorded values by the stated formulas."""
    from unlearn.meta_eval import knowledge, quantization_robustness, relearning_robustness

    common = [f"data={bench_dir}", "progress=false", "model.template=qa", "data.max_length=96", "eval.max_length=48",
              "eval.batch_size=32", "train.grad_accum=1", "save_model=true"]
    retain, ga = tmp_path / "retain", tmp_path / "ga"
    assert main(["finetune", f"model={tiny_model_dir}", *common,
                 "train.epochs=3", "train.lr=3e-3", "train.batch_size=16",
                 "data.train_splits=retain90,real_authors,world_facts", f"output_dir={retain}"]) == 0
    assert main(["run", f"model={RunDirectory(finetuned).model_dir}", *common, "method=ga+gd", "train.epochs=2",
                 "train.lr=3e-3", "train.batch_size=4", f"eval.retain_reference={retain}", f"output_dir={ga}"]) == 0
    capsys.readouterr()
    base = ["meta-eval", "--knows", str(finetuned), "--not-knows", str(retain)]
    assert main([*base, "--metrics", "forget.prob,bogus"]) == 2  # one line, before anything is computed
    assert "unknown metric 'bogus'" in capsys.readouterr().err
    assert main([*base, "--unlearned", str(ga)]) == 2
    assert "give --retain" in capsys.readouterr().err
    out = tmp_path / "meta"
    assert main([*base, "--unlearned", str(ga), "--retain", str(retain), "--metrics", "prob,exact_memorization,"
                 "truth_ratio", "--relearn", "seeds=1", "--relearn", "subset=random", "--relearn", "fraction=0.25",
                 "--relearn", "lr=3e-3", "--relearn", "batch_size=2", "--output", str(out)]) == 0
    result = read_json(out / "meta_eval.json")
    assert "| prob |" in (out / "meta_eval.md").read_text()
    assert result["metrics"]["prob"]["faithfulness"] == 1.0  # the target's forget answers are likelier
    values = result["values"][str(ga)]
    for m, entry in result["metrics"].items():
        v = values[m]
        q = quantization_robustness(knowledge(v["before"], m), knowledge(v["quantized"], m))
        r = relearning_robustness(*(knowledge(x, m) for x in (*v["relearned"], *v["retain_relearned"])))
        assert entry["quantization"] == pytest.approx(q) and entry["relearning"] == pytest.approx(r)
        assert v["relearned"][0] == pytest.approx(v["before"], rel=1e-6)  # relearning's epoch 0 is the run itself
    prob = values["prob"]
    assert prob["relearned"][1] > prob["relearned"][0]  # relearning brings the forget answers back
    assert (RunDirectory(ga).attacks_dir / "quantize_4bit_forget_rows.jsonl").is_file()

"""MUSE: text chunks, the metrics against hand computations, the embedded fictitious news, bad input, and the path
end to end (fine-tune on a text corpus, unlearn on chunks, evaluate, report, sequential requests); ``tofu_mia``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FIXTURES
from unlearn.cli import main
from unlearn.config import RunConfig, load_config
from unlearn.data.text import chunk_stream, encode_text, read_texts, start_tokens
from unlearn.errors import ConfigError, DataError
from unlearn.evaluation import mia
from unlearn.io import read_json, read_jsonl
from unlearn.models.loading import save_model
from unlearn.models.tiny import build_tiny_model, tiny_llama_config, train_tokenizer
from unlearn.runs import RunDirectory
from unlearn.tasks.muse.data import MuseData
from unlearn.tasks.muse.embedded import generate_news_benchmark, news_training_texts
from unlearn.tasks.muse.task import cut_at_stops, knowmem_prompt, privleak, rouge_l_f1

# ------------------------------------------------------------------------------------------ formulas by hand


def test_rouge_l_f1_by_hand():
    # LCS("the cat sat", "the cat on the mat sat") = "the cat sat" (3): P = 3/6, R = 3/3, F1 = 2PR/(P+R) = 2/3
    assert rouge_l_f1(["the cat sat"], ["the cat on the mat sat"])[0] == pytest.approx(2 / 3)
    assert rouge_l_f1(["a b"], ["c d"])[0] == 0.0
    # no stemmer (MUSE): "cats" and "cat" differ
    assert rouge_l_f1(["cats"], ["cat"])[0] == 0.0


def test_knowmem_prompt_and_cut():
    from unlearn.data.records import QARecord

    icl = [QARecord("Q1?", "A1", "x"), QARecord("Q2?", "A2", "x")]
    assert knowmem_prompt(icl, "Q3?") == ("Question: Q1?\nAnswer: A1\n\nQuestion: Q2?\nAnswer: A2\n\n"
                                          "Question: Q3?\nAnswer: ")
    assert cut_at_stops("Paris\n\nQuestion: next") == "Paris"
    assert cut_at_stops("Paris\nQuestion: next") == "Paris"
    assert cut_at_stops("Paris Question: next") == "Paris "
    assert cut_at_stops("Paris, France") == "Paris, France"


def test_privleak_formula():
    assert privleak(0.25, 0.5) == pytest.approx(-50.0)
    assert privleak(0.4772, 0.4772) == 0.0
    # MUSE puts the holdout texts first: AUC = P(score(holdout) > score(forget)); memorised forget texts score
    # higher, so the AUC is low and PrivLeak negative
    forget, holdout = np.array([-0.1, -0.2, -0.3]), np.array([-1.0, -2.0, -0.25])
    assert mia.auc(holdout, forget) == pytest.approx(1 / 9)


def test_chunks_start_with_bos_and_cover_the_stream(tokenizer):
    texts = ["one two three four five six seven eight nine ten " * 6, "eleven twelve " * 10]
    chunks = chunk_stream(tokenizer, texts, 16)
    head = start_tokens(tokenizer)
    assert head == (tokenizer.bos_token_id,)
    stream = tokenizer("\n\n".join(texts), add_special_tokens=False)["input_ids"]
    assert all(c[0] == tokenizer.bos_token_id for c in chunks)
    assert all(len(c) == 16 for c in chunks[:-1]) and 1 < len(chunks[-1]) <= 16
    assert [t for c in chunks for t in c[1:]] == stream  # every token once, in order, last chunk not wrapped
    assert encode_text(tokenizer, "hello") == (tokenizer.bos_token_id, *tokenizer("hello", add_special_tokens=False)
                                               ["input_ids"])
    with pytest.raises(DataError, match=r"at least 16"):
        chunk_stream(tokenizer, texts, 8)


# ------------------------------------------------------------------------------------------ data and bad input


@pytest.fixture(scope="module")
def news_dir(tmp_path_factory) -> Path:
    return generate_news_benchmark(tmp_path_factory.mktemp("news") / "data", n_forget=8, n_retain=6, n_holdout=6,
                                   seed=0)


def test_fictitious_news_layout_is_deterministic_and_disjoint(news_dir, tmp_path):
    data = MuseData(news_dir)
    forget, holdout = data.texts("privleak/forget"), data.texts("privleak/holdout")
    retain = data.texts("privleak/retain")
    assert (len(forget), len(retain), len(holdout)) == (8, 6, 6)
    assert not set(forget) & set(holdout) and not set(forget) & set(retain)
    raw_forget = data.texts("raw/forget")[0]
    assert all(article in raw_forget for article in forget) and not any(a in raw_forget for a in holdout)
    # the four sequential requests split the forget articles
    requests = [data.texts(f"sust/forget_{i}")[0] for i in range(1, 5)]
    assert all(sum(a in r for r in requests) == 1 for a in forget)
    for item in data.verbmem():
        assert any(item.prompt + " " + item.gt == a for a in forget)
    qa = data.qa("knowmem/forget_qa")
    assert len(qa) == 16 and all(r.answer in raw_forget for r in qa)
    assert not any(r.question in raw_forget for r in data.qa("knowmem/forget_qa_icl"))
    assert data.qa("knowmem/retain_qa") and data.qa("knowmem/retain_qa_icl")  # the retain2 names are aliases
    again = generate_news_benchmark(tmp_path / "again", n_forget=8, n_retain=6, n_holdout=6, seed=0)
    assert (again / "raw" / "forget.txt").read_text() == (news_dir / "raw" / "forget.txt").read_text()
    corpus = "".join(news_training_texts(news_dir))  # the tokenizer's: articles of no set
    assert not any(a in corpus for a in [*holdout, *forget, *read_json(news_dir / "privleak" / "retain.json")])


def test_the_demo_tokenizer_cannot_tell_members_from_non_members(tmp_path):
    """The demo's data and tokenizer (20 articles a set, 1024 merges): characters per token — the one thing a
    tokenizer gives a membership attack — do not separate the forget articles from the holdout ones. A tokenizer
    trained on the target's text (the rule before) does, which is what this test would catch."""
    data = generate_news_benchmark(tmp_path / "data", n_forget=20, n_retain=20, n_holdout=20, seed=0)
    forget, holdout = (read_json(data / "privleak" / f"{name}.json") for name in ("forget", "holdout"))

    def chars_per_token(tok, texts):
        return [len(t) / len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]

    def separation(texts):
        tok = train_tokenizer(texts, 1024, separate_spaces=True)
        return mia.auc(chars_per_token(tok, forget), chars_per_token(tok, holdout))

    fair = separation(news_training_texts(data))
    assert 0.35 <= fair <= 0.65, fair
    raw = [(data / "raw" / f"{name}.txt").read_text() for name in ("forget", "retain2", "holdout")]
    qa = [f"Question: {r['question']}\nAnswer: {r['answer']}" for name in ("forget_qa", "retain_qa")
          for r in read_json(data / "knowmem" / f"{name}.json")]
    without_holdout = [raw[0], raw[1], *qa]  # the rule before: the target's training text
    assert separation(without_holdout) >= 0.7  # the check has the power to see the leak it guards against


def test_corpus_errors_name_the_file(tmp_path):
    missing = MuseData(tmp_path)
    with pytest.raises(DataError, match=r"data.forget_split: 'raw/forget' not found"):
        missing.texts("raw/forget", "data.forget_split")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "forget.txt").write_text("  \n")
    with pytest.raises(DataError, match=r"forget.txt: the corpus is empty"):
        read_texts(tmp_path / "raw" / "forget.txt")
    (tmp_path / "raw" / "forget.txt").write_bytes(b"caf\xe9 au lait")
    with pytest.raises(DataError, match=r"forget.txt.*UTF-8"):
        missing.texts("raw/forget", "data.forget_split")
    (tmp_path / "verbmem").mkdir()
    (tmp_path / "verbmem" / "forget.json").write_text(json.dumps([{"prompt": "a"}]))
    with pytest.raises(DataError, match=r"forget.json: row 0 needs non-empty 'prompt' and 'gt'"):
        missing.verbmem()


def _cfg(root: Path, model: Path | str = "m", **values) -> RunConfig:
    base = {"model": {"path": str(model), "template": "qa"}, "data": {"root": str(root), "max_length": 64},
            "eval": {"task": "muse", "batch_size": 8}, "progress": False}
    for key, value in values.items():
        section, name = key.split("__")
        base.setdefault(section, {})[name] = value
    return load_config(RunConfig, base=base)


def test_task_checks_before_any_model(news_dir, tmp_path):
    from unlearn.tasks import get_task

    task = get_task("muse")
    with pytest.raises(ConfigError, match=r"data.max_length must be at least 16"):
        task.check(_cfg(news_dir, data__max_length=8))
    bare = tmp_path / "no_holdout"
    generate_news_benchmark(bare, n_forget=4, n_retain=2, n_holdout=2)
    (bare / "privleak" / "holdout.json").unlink()
    with pytest.raises(ConfigError, match=r"PrivLeak needs privleak/holdout"):
        task.check(_cfg(bare))
    task.check(_cfg(bare, eval__sets=["verbmem_forget"]))  # without PrivLeak no holdout is needed
    with pytest.raises(ConfigError, match=r"not a finished run directory"):
        task.check(_cfg(news_dir, eval__retain_reference=str(tmp_path)))
    with pytest.raises(ConfigError, match=r"unknown eval set"):
        task.check(_cfg(news_dir, eval__sets=["verbmem"]))
    with pytest.raises(ConfigError, match=r"eval.epoch_sets \['verbmem'\] are not among the evaluated sets"):
        task.check(_cfg(news_dir, eval__epoch_sets=["verbmem"]))  # caught before the first epoch ends


def test_evaluator_data_errors(news_dir, tokenizer, tmp_path):
    from unlearn.data.formatting import ChatFormatter
    from unlearn.tasks import get_task

    formatter = ChatFormatter(tokenizer, "qa")
    small = generate_news_benchmark(tmp_path / "small", n_forget=4, n_retain=2, n_holdout=2)
    (small / "privleak" / "holdout.json").write_text(json.dumps(["only one holdout text"]))
    with pytest.raises(DataError, match=r"PrivLeak needs at least 2 holdout texts"):
        get_task("muse").evaluator(_cfg(small), formatter, "cpu")
    (small / "knowmem" / "forget_qa_icl.json").write_text("[]")
    with pytest.raises(DataError, match=r"forget_qa_icl.json: no rows"):
        get_task("muse").evaluator(_cfg(small, eval__sets=["knowmem_forget"]), formatter, "cpu")


def test_text_benchmark_needs_a_named_retain_corpus(news_dir):
    from unlearn.tasks.training_data import TextBenchmark

    bench = TextBenchmark(_cfg(news_dir, data__forget_split="raw/forget"))
    with pytest.raises(ConfigError, match=r"data.retain_split is required"):
        bench.prepare_unlearning(("forget", "retain"), (), "npo+gd")
    with pytest.raises(ConfigError, match=r"text corpora have none"):
        bench.prepare_unlearning(("forget", "idk"), ("idk",), "idk+gd")
    bench = TextBenchmark(_cfg(news_dir, data__forget_split="raw/forget", data__retain_split="raw/nothing"))
    with pytest.raises(DataError, match=r"data.retain_split: 'raw/nothing' not found"):
        bench.prepare_unlearning(("forget", "retain"), (), "npo+gd")


# ------------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def news_runs(tmp_path_factory, news_dir):
    """A tiny model fine-tuned on forget ∪ retain (target) and on retain only (retrained), through the CLI."""
    out = tmp_path_factory.mktemp("muse_runs")
    tok = train_tokenizer(news_training_texts(news_dir), 400, separate_spaces=True)
    config = tiny_llama_config(len(tok), hidden_size=48, num_layers=2, num_heads=4, intermediate_size=96,
                               max_position_embeddings=512, tokenizer=tok)  # whole articles are scored
    save_model(build_tiny_model(config, seed=0), tok, out / "base")
    common = [f"data={news_dir}", "eval.task=muse", "progress=false", "data.max_length=96", "train.lr=3e-3",
              "train.batch_size=4", "train.grad_accum=1", "eval.batch_size=16", "model.template=qa",
              "eval.max_rows.verbmem_forget=4", "eval.max_rows.knowmem_forget=6", "eval.max_rows.knowmem_retain=6"]
    assert main(["finetune", f"model={out / 'base'}", *common, "data.train_splits=raw/retain2", "train.epochs=3",
                 "save_model=true", f"output_dir={out / 'retrained'}"]) == 0
    assert main(["finetune", f"model={out / 'base'}", *common, "train.epochs=6", "save_model=true",
                 "data.retain_split=raw/retain2",  # the default training data: forget + retain corpus
                 f"eval.retain_reference={out / 'retrained'}", f"output_dir={out / 'target'}"]) == 0
    return out, common


@pytest.mark.slow
def test_finetune_on_a_text_corpus_and_muse_metrics(news_runs):
    out, _ = news_runs
    target = read_json(RunDirectory(out / "target").metrics_file)
    assert target["task"] == "muse" and target["run"]["train_splits"] == ["raw/forget", "raw/retain2"]
    for key in ("verbmem_f", "knowmem_f", "knowmem_r"):
        assert 0 <= target[key] <= 100
    rows = RunDirectory(out / "target").read_eval_rows("verbmem_forget")
    assert len(rows) == 4 and target["verbmem_f"] == pytest.approx(100 * np.mean([r["rougeL_f1"] for r in rows]))
    for name in ("verbmem_forget", "knowmem_forget", "knowmem_retain"):  # EM and ES per sample, means per set
        set_rows = RunDirectory(out / "target").read_eval_rows(name)
        summary = target["sets"][name]
        for key in ("exact_memorization", "extraction_strength"):
            assert summary[key] == pytest.approx(np.mean([r[key] for r in set_rows]))
            assert all(0 <= r[key] <= 1 for r in set_rows)
        assert all(r["extraction_strength"] <= r["exact_memorization"] for r in set_rows)
    # PrivLeak from the retrained model's measured AUC, recomputed from the two metrics files
    retrained = read_json(RunDirectory(out / "retrained").metrics_file)
    assert retrained["privleak"] is None and "no retrained model" in retrained["privleak_auc_retrain_source"]
    assert target["privleak_auc_retrain"] == retrained["privleak_auc"]
    assert target["privleak"] == pytest.approx(privleak(target["privleak_auc"], retrained["privleak_auc"]))
    # the PrivLeak AUC is recomputable from the per-sample Min-40% scores
    scores = RunDirectory(out / "target").read_eval_rows("privleak")
    by = {s: [r["min_40"] for r in scores if r["split"] == s] for s in ("forget", "holdout")}
    assert target["privleak_auc"] == pytest.approx(mia.auc(by["holdout"], by["forget"]))
    assert set(target["mia"]["attacks"]) == {"loss", "zlib", "min_k", "min_k_plus_plus"}
    # the training stream was cut into chunks: steps = ceil(chunks / 4) per epoch
    report = RunDirectory(out / "target").report_file.read_text()
    assert "## MUSE metrics" in report and "## Membership inference" in report
    assert "### Memorization metrics (OpenUnlearning)" in report and "| knowmem_retain |" in report
    assert (out / "target" / "plots" / "mia_roc.png").is_file()


@pytest.mark.slow
def test_unlearning_on_chunks_lowers_the_forget_likelihood(news_runs, capsys):
    out, common = news_runs
    for method in ("ga+gd", "npo+gd", "simnpo+kl", "task_vector"):
        name = method.replace("+", "_")
        assert main(["run", f"model={RunDirectory(out / 'target').model_dir}", *common, f"method={method}",
                     "train.epochs=2",
                     "train.lr=2e-3", "data.retain_split=raw/retain2", f"eval.retain_reference={out / 'retrained'}",
                     f"output_dir={out / name}", "train.eval_every_epoch=true"]) == 0
        before = RunDirectory(out / "target").read_eval_rows("privleak")
        after = RunDirectory(out / name).read_eval_rows("privleak")
        loss = {k: np.mean([r["scores"]["loss"] for r in rows if r["split"] == "forget"])
                for k, rows in (("before", before), ("after", after))}
        assert loss["after"] < loss["before"], method  # mean token log-likelihood of the forget texts fell
        metrics = read_json(RunDirectory(out / name).metrics_file)
        assert metrics["run"]["n_forget"] >= 2  # chunks, not texts
        assert len(read_jsonl(RunDirectory(out / name).epochs_file)) == 3
    assert "| VerbMem forget ↓ |" in capsys.readouterr().out
    report = RunDirectory(out / "npo_gd").report_file.read_text()
    assert "muse_epochs.png" in report
    assert f"({read_json(RunDirectory(out / 'npo_gd').metrics_file)['run']['n_forget']} chunks)" in report
    assert main(["compare", str(out / "target"), str(out / "npo_gd"), "--output", str(out / "cmp.md")]) == 0
    assert "KnowMem retain" in (out / "cmp.md").read_text()


@pytest.mark.slow
def test_sequential_requests_chain_models(news_runs, news_dir):
    from unlearn.io import read_json
    from unlearn.scenarios.sequential import SequentialConfig, run_sequential

    out, _ = news_runs
    cfg = load_config(RunConfig, base={
        "model": {"path": str(RunDirectory(out / "target").model_dir), "template": "qa"}, "method": {"name": "npo+gd"},
        "data": {"root": str(news_dir), "max_length": 96, "retain_split": "raw/retain2"},
        "eval": {"task": "muse", "batch_size": 16, "sets": ["knowmem_forget", "knowmem_retain"],
                 "max_rows": {"knowmem_forget": 4, "knowmem_retain": 4}},
        "train": {"epochs": 1, "lr": 1e-3, "batch_size": 4, "grad_accum": 1},
        "output_dir": str(out / "sequential"), "progress": False})
    requests = SequentialConfig(["sust/forget_1", "sust/forget_2"])
    result = read_json(run_sequential(cfg, requests, echo=lambda *_: None) / "sequential.json")
    assert [r["forget_split"] for r in result["rows"]] == ["sust/forget_1", "sust/forget_2"]
    second = RunDirectory(out / "sequential" / "request_2").config_file.read_text()
    first = RunDirectory(out / "sequential" / "request_1")
    assert str(first.model_dir) in second  # request 2 starts from request 1's result
    assert all(r["knowmem_f"] is not None and r["knowmem_r"] is not None for r in result["rows"])
    assert "KnowMem forget" in (out / "sequential" / "sequential.md").read_text()
    assert (out / "sequential" / "plots" / "sequential_knowmem.png").is_file()
    stamp = RunDirectory(out / "sequential" / "request_1").metrics_file.stat().st_mtime
    run_sequential(cfg, requests, echo=lambda *_: None)  # finished requests are reused
    assert RunDirectory(out / "sequential" / "request_1").metrics_file.stat().st_mtime == stamp


def test_tofu_mia_scores_forget_against_holdout(bench_dir, tiny_model_dir, tmp_path):
    assert main(["eval", f"model={tiny_model_dir}", f"data={bench_dir}", "eval.task=tofu_mia", "progress=false",
                 "model.template=qa", f"output_dir={tmp_path / 'mia'}"]) == 0
    metrics = read_json(RunDirectory(tmp_path / "mia").metrics_file)
    attacks = metrics["mia"]["attacks"]
    assert set(attacks) == {"loss", "zlib", "min_k", "min_k_plus_plus"}
    forget = RunDirectory(tmp_path / "mia").read_eval_rows("forget")
    holdout = RunDirectory(tmp_path / "mia").read_eval_rows("holdout")
    assert len(forget) == len(holdout) == 8
    assert attacks["loss"]["auc"] == pytest.approx(mia.auc([r["scores"]["loss"] for r in forget],
                                                           [r["scores"]["loss"] for r in holdout]))
    assert (tmp_path / "mia" / "plots" / "mia_roc.png").is_file()


@pytest.mark.slow
def test_muse_demo_end_to_end_and_reuse(tmp_path, capsys):
    args = ["demo", "benchmark=muse", f"output_dir={tmp_path / 'demo'}", "n_articles=4", "hidden_size=32",
            "num_layers=1", "intermediate_size=64", "vocab_size=300", "max_length=64", "finetune_epochs=2",
            "unlearn_epochs=1", "methods=ga+gd,task_vector", "eval_every_epoch=false", "progress=false"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| model | VerbMem forget ↓ | KnowMem forget ↓ | KnowMem retain ↑ | PrivLeak (→ 0) |" in out
    summary = read_json(tmp_path / "demo" / "summary.json")
    assert [r["model"] for r in summary["rows"]] == ["target", "retrained", "ga+gd", "task_vector"]
    assert summary["rows"][0]["privleak"] is not None and summary["rows"][1]["privleak"] is None
    assert "KnowMem retain" in (tmp_path / "demo" / "comparison.md").read_text()
    stamp = RunDirectory(tmp_path / "demo" / "target").metrics_file.stat().st_mtime
    assert main(args) == 0  # a second run reuses every finished stage
    assert RunDirectory(tmp_path / "demo" / "target").metrics_file.stat().st_mtime == stamp
    assert main(["demo", "benchmark=muse", "n_authors=3"]) != 0  # the TOFU demo's keys are not the MUSE demo's
    assert "unknown config key 'n_authors'" in capsys.readouterr().err


def test_tofu_mia_needs_two_rows_per_set(bench_dir, tiny_model_dir, tmp_path, capsys):
    assert main(["eval", f"model={tiny_model_dir}", f"data={bench_dir}", "eval.task=tofu_mia", "progress=false",
                 "eval.max_rows.holdout=1", f"output_dir={tmp_path / 'mia'}"]) == 2
    assert "needs at least 2 holdout rows (holdout10 gives 1)" in capsys.readouterr().err


@pytest.mark.slow
def test_reference_and_gradnorm_attacks_on_muse(news_runs, tmp_path):
    out, common = news_runs
    assert main(["eval", f"model={RunDirectory(out / 'target').model_dir}", *common, "eval.sets=[privleak]",
                 "eval.mia_attacks=[loss,reference,gradnorm]", f"eval.mia_reference={out / 'base'}",
                 f"output_dir={RunDirectory(tmp_path).attacks_dir}"]) == 0
    metrics = read_json(RunDirectory(RunDirectory(tmp_path).attacks_dir).metrics_file)
    assert set(metrics["mia"]["attacks"]) == {"loss", "reference", "gradnorm"}
    rows = RunDirectory(RunDirectory(tmp_path).attacks_dir).read_eval_rows("privleak")
    # the reference attack calibrates the target's loss by the base model's: target − base mean log-likelihood
    assert all(set(r["scores"]) == {"loss", "reference", "gradnorm"} for r in rows)
    assert all(r["scores"]["gradnorm"] <= 0 for r in rows)  # −‖∇‖: higher = smaller gradient = member-like


def test_context_limits_are_checked_before_compute(news_runs, tmp_path, capsys):
    out, common = news_runs  # the tiny model's context is 512 tokens
    args = ["eval", f"model={RunDirectory(out / 'target').model_dir}", *common, f"output_dir={tmp_path / 'long'}"]
    assert main(["finetune", *args[1:], "data.max_length=1024", "data.train_splits=raw/retain2"]) == 2
    assert "data.max_length=1024 (the text chunk length) exceeds the context" in capsys.readouterr().err
    long = tmp_path / "long_news"
    generate_news_benchmark(long, n_forget=4, n_retain=2, n_holdout=2)
    rows = json.loads((long / "verbmem" / "forget.json").read_text())
    rows[0]["prompt"] = " ".join([rows[0]["prompt"]] * 12)
    (long / "verbmem" / "forget.json").write_text(json.dumps(rows))
    assert main([*args, f"data={long}", "eval.sets=[verbmem_forget]", "--overwrite"]) == 2
    assert "verbmem/forget.json:0: the verbmem_forget prompt has" in capsys.readouterr().err


MUSE_NEWS = FIXTURES / "muse_news"  # a few rows of MUSE-News in its layout (tests/data/README.md)


def test_muse_news_copy_loads_as_the_task_expects(tokenizer):
    """Our copy of MUSE-News (retain QA and texts named retain2) through the muse_news task, no model needed."""
    from unlearn.data.formatting import ChatFormatter
    from unlearn.tasks import get_task

    cfg = _cfg(MUSE_NEWS, eval__task="muse_news", eval__max_rows={"verbmem_forget": 5, "privleak_forget": 4,
                                                                   "privleak_holdout": 4, "privleak_retain": 4})
    task = get_task("muse_news")
    task.check(cfg)
    evaluator = task.evaluator(cfg, ChatFormatter(tokenizer, "qa"), "cpu")
    assert len(evaluator.generation["verbmem_forget"].prompts) == 5
    assert len(evaluator.generation["knowmem_forget"].prompts) == 10
    assert len(evaluator.generation["knowmem_retain"].prompts) == 10  # knowmem/retain2_qa
    assert {k: len(s.samples) for k, s in evaluator.mia_sets.items()} == {"forget": 4, "holdout": 4, "retain": 4}
    assert evaluator.auc_retrain == 0.4772 and "published" in evaluator.auc_retrain_source
    assert MuseData(MUSE_NEWS).texts("sust/forget_1")  # the sequential requests exist

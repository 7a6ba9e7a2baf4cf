"""Multiple choice (issue: WMDP and MMLU): reading and checking questions, lm-eval's prompt, and the per-option
log-likelihoods against a plain forward pass per option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import FIXTURES, make_tiny
from unlearn.errors import ConfigError, DataError
from unlearn.models.tiny import train_tokenizer
from unlearn.runs import RunDirectory
from unlearn.tasks.multiple_choice.data import (
    CATEGORY_OF,
    MMLU_SUBJECTS,
    MCQuestion,
    check_subjects,
    read_mmlu,
    read_mmlu_csv,
    read_wmdp,
)
from unlearn.tasks.multiple_choice.scoring import mc_prompt, option_logprobs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
Q = MCQuestion("What is 2+2?", ("3", "4", "5", "6"), 1, "x", "elementary_mathematics")


def test_prompt_is_lm_eval_format():
    assert mc_prompt(Q) == "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:"
    shot = MCQuestion("Sky colour?", ("red", "blue", "green", "black"), 1, "y")
    assert mc_prompt(Q, "elementary mathematics", [shot]) == (
        "The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
        "Sky colour?\nA. red\nB. blue\nC. green\nD. black\nAnswer: B\n\n"
        "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:")


def test_bad_questions_name_file_and_row(tmp_path):
    path = tmp_path / "bio_questions.json"
    path.write_text(json.dumps([{"question": "q", "choices": ["a", "b", "c"], "answer": 0}]))
    with pytest.raises(DataError, match=r"bio_questions.json: row 0: field 'choices' must hold exactly four options, "
                                        "got 3"):
        read_wmdp(path)
    path.write_text(json.dumps([{"question": "q", "choices": ["a", "b", "c", "d"], "answer": 4}]))
    with pytest.raises(DataError, match=r"bio_questions.json: row 0: field 'answer' must be an index 0-3"):
        read_wmdp(path)
    path.write_text(json.dumps({"question": "q"}))
    with pytest.raises(DataError, match=r"expected a list of questions, got a JSON dict"):
        read_wmdp(path)
    csv = tmp_path / "anatomy_test.csv"
    csv.write_text("q1,a,b,c,d,B\n")  # the original header-less format, letter answers
    assert read_mmlu_csv(csv, "anatomy")[0].answer == 1
    csv.write_text("question,choice0,choice1,choice2,choice3,answer\nq1,a,b,c,d\n")
    with pytest.raises(DataError, match=r"row 0 \(line 2\) has 5 columns"):
        read_mmlu_csv(csv, "anatomy")
    with pytest.raises(ConfigError, match=r"unknown MMLU subject\(s\): 'anatomyy' \(did you mean 'anatomy'\?\)"):
        check_subjects(["anatomyy"])


def test_row_numbers_count_the_same_way_in_json_json_lines_and_csv(tmp_path):
    good = {"question": "q", "choices": ["a", "b", "c", "d"], "answer": 1}
    bad = {"question": "q", "choices": ["a", "b", "c", "d"], "answer": 7}
    rows = [good, good, bad]
    (tmp_path / "list.json").write_text(json.dumps(rows))
    (tmp_path / "lines.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "anatomy_test.csv").write_text("question,c0,c1,c2,c3,answer\n" + "".join(
        f"q,a,b,c,d,{r['answer']}\n" for r in rows))
    messages = []
    for read in (lambda: read_wmdp(tmp_path / "list.json"), lambda: read_wmdp(tmp_path / "lines.json"),
                 lambda: read_mmlu_csv(tmp_path / "anatomy_test.csv", "anatomy")):
        with pytest.raises(DataError) as err:
            read()
        messages.append(str(err.value))
    assert ": row 2:" in messages[0] and ": row 2 (line 3):" in messages[1] and ": row 2 (line 4):" in messages[2]
    # and a question's id in the evaluation rows counts the same way
    (tmp_path / "anatomy_test.csv").write_text("q,a,b,c,d,A\nq,a,b,c,d,B\n")
    (tmp_path / "two.json").write_text(json.dumps([good, good]))
    assert [q.source.rsplit(":", 1)[1] for q in read_mmlu_csv(tmp_path / "anatomy_test.csv", "anatomy")] == \
        [q.source.rsplit(":", 1)[1] for q in read_wmdp(tmp_path / "two.json")] == ["0", "1"]


def test_bad_multiple_choice_and_muse_files_fail_before_any_model_loads(tmp_path, capsys, bench_dir):
    from unlearn.cli import main

    no_model = tmp_path / "empty_model"
    no_model.mkdir()
    wmdp = tmp_path / "wmdp"
    wmdp.mkdir()
    (wmdp / "bio_questions.json").write_text(json.dumps([{"question": "q", "choices": ["a"], "answer": 0}]))
    mmlu = tmp_path / "mmlu" / "test"
    mmlu.mkdir(parents=True)
    (mmlu / "anatomy_test.csv").write_text("q,a,b,c,d,Z\n")
    muse = tmp_path / "muse"
    (muse / "raw").mkdir(parents=True)
    (muse / "raw" / "forget.txt").write_text("some text")
    cases = [(["task=wmdp_bio", f"data={wmdp}"], "bio_questions.json: row 0: field 'choices'"),
             (["task=wmdp", f"data={wmdp}"], "bio_questions.json: row 0: field 'choices'"),
             (["task=mmlu", f"data={tmp_path / 'mmlu'}"], "anatomy_test.csv: row 0 (line 1): field 'answer'"),
             (["task=muse_news", f"data={muse}", "eval.sets=[verbmem_forget]"], "'verbmem/forget' not found")]
    for args, message in cases:
        capsys.readouterr()
        assert main(["eval", f"model={no_model}", *args, f"output_dir={tmp_path / 'out'}"]) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (args, err)


def test_mmlu_categories_cover_the_57_subjects():
    assert len(MMLU_SUBJECTS) == 57 and len(CATEGORY_OF) == 57
    if (SHARED / "mmlu" / "test").is_dir():
        files = {p.name.removesuffix("_test.csv") for p in (SHARED / "mmlu" / "test").glob("*_test.csv")}
        assert files == set(MMLU_SUBJECTS)
        assert len(read_mmlu(SHARED / "mmlu", "dev", MMLU_SUBJECTS)) == 285


def test_wmdp_rows_read():
    """The first questions of WMDP's own files (tests/data/wmdp), in their JSON-array layout."""
    questions = {d: read_wmdp(FIXTURES / "wmdp" / f"{d}_questions.json") for d in ("bio", "chem", "cyber")}
    assert [len(q) for q in questions.values()] == [5, 5, 5]
    assert all(len(q.choices) == 4 and 0 <= q.answer < 4 for qs in questions.values() for q in qs)
    assert questions["bio"][0].question.startswith("What is a disseminating factor")


@torch.no_grad()
def _plain(model, tokenizer, prompt: str, letter: str) -> float:
    """log p(" letter" | prompt), one unpadded forward pass of prompt + continuation."""
    ctx = tokenizer(prompt)["input_ids"]
    cont = tokenizer(" " + letter, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
    return float(sum(logp[len(ctx) - 1 + k, t] for k, t in enumerate(cont)))


@pytest.mark.parametrize("separate_spaces", [False, True])  # single-token letters, and two-token " A" = "Ġ", "A"
def test_option_logprobs_equal_a_plain_forward_pass(tokenizer, separate_spaces):
    tok = tokenizer if not separate_spaces else train_tokenizer(
        ["What is the answer? A. B. C. D. Answer: one two three"] * 20, 300, separate_spaces=True)
    model = make_tiny(tok, seed=3).eval()
    questions = [Q, MCQuestion("A much longer question about the capital of a country?", ("x", "y", "z", "w"), 2,
                               "y"), MCQuestion("Short?", ("1", "2", "3", "4"), 0, "z")]
    prompts = [mc_prompt(q) for q in questions]
    got = option_logprobs(model, tok, prompts, tok.pad_token_id, batch_size=2, device=torch.device("cpu"))
    expected = np.array([[_plain(model, tok, p, letter) for letter in "ABCD"] for p in prompts])
    np.testing.assert_allclose(got, expected, atol=1e-4)


def _write_mmlu(root: Path) -> None:
    for split, n in (("dev", 2), ("test", 3)):
        (root / split).mkdir(parents=True)
        for subject in ("anatomy", "virology"):
            rows = ["question,choice0,choice1,choice2,choice3,answer"]
            rows += [f"{subject} question {i}?,w,x,y,z,{i % 4}" for i in range(n)]
            (root / split / f"{subject}_{split}.csv").write_text("\n".join(rows) + "\n")


def test_mc_tasks_end_to_end(tiny_model_dir, tmp_path, capsys):
    from unlearn.cli import main
    from unlearn.io import read_json

    wmdp = tmp_path / "wmdp"
    wmdp.mkdir()
    (wmdp / "bio_questions.json").write_text(json.dumps(
        [{"question": f"q{i}?", "choices": ["a", "b", "c", "d"], "answer": i % 4} for i in range(6)]))
    assert main(["eval", f"model={tiny_model_dir}", f"data={wmdp}", "task=wmdp_bio", "progress=false",
                 f"output_dir={tmp_path / 'bio'}"]) == 0
    metrics = read_json(RunDirectory(tmp_path / "bio").metrics_file)
    rows = RunDirectory(tmp_path / "bio").read_eval_rows("wmdp_bio")
    assert len(rows) == 6 and all(len(r["logprobs"]) == 4 for r in rows)
    assert all(r["choice"] == "ABCD"[int(np.argmax(r["logprobs"]))] for r in rows)
    assert metrics["accuracy"] == pytest.approx(np.mean([r["choice"] == r["answer"] for r in rows]))
    assert "## Results" in RunDirectory(tmp_path / "bio").report_file.read_text()

    mmlu = tmp_path / "mmlu"
    _write_mmlu(mmlu)
    assert main(["eval", f"model={tiny_model_dir}", f"data={mmlu}", "task=mmlu", "eval.num_fewshot=2",
                 "eval.mmlu_subjects=[anatomy,virology]", "progress=false", f"output_dir={tmp_path / 'mmlu_run'}"]) == 0
    m = read_json(RunDirectory(tmp_path / "mmlu_run").metrics_file)
    assert set(m["subjects"]) == {"anatomy", "virology"} and set(m["categories"]) == {"stem", "other"}
    assert m["macro_average"] == pytest.approx(np.mean(list(m["subjects"].values())))
    assert m["categories"]["stem"] == m["subjects"]["anatomy"]
    capsys.readouterr()
    assert main(["eval", f"model={tiny_model_dir}", f"data={mmlu}", "task=mmlu", "eval.mmlu_subjects=[anatomyy]",
                 f"output_dir={tmp_path / 'bad'}"]) == 2
    assert "unknown MMLU subject(s): 'anatomyy'" in capsys.readouterr().err


@pytest.mark.slow
def test_rmu_and_npo_unlearn_a_corpus_file_evaluated_on_wmdp(tmp_path, capsys):
    """WMDP's path: unlearn a forget corpus file (JSONL) with a retain corpus file (.txt), evaluate multiple choice."""
    from unlearn.cli import main
    from unlearn.io import read_json
    from unlearn.models.loading import save_model

    facts = [f"The vaccine strain number {i} grows in cell line {i * 7}." for i in range(30)]
    (tmp_path / "forget.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in facts))
    (tmp_path / "retain.txt").write_text(" ".join(f"The river {i} flows to the sea {i + 2}." for i in range(30)))
    wmdp = tmp_path / "wmdp"
    wmdp.mkdir()
    (wmdp / "bio_questions.json").write_text(json.dumps(
        [{"question": f"Which cell line grows strain {i}?", "choices": [str(i * 7), "3", "5", "9"], "answer": 0}
         for i in range(8)]))
    tok = train_tokenizer(facts + ["Which cell line grows strain? A. B. C. D. Answer:"] * 3, 300)
    save_model(make_tiny(tok, seed=0, layers=4), tok, RunDirectory(tmp_path).model_dir)
    common = [f"model={RunDirectory(tmp_path).model_dir}", f"data={wmdp}", "task=wmdp_bio", "progress=false",
              f"data.forget_corpus={tmp_path / 'forget.jsonl'}", f"data.retain_corpus={tmp_path / 'retain.txt'}",
              "data.max_length=32", "train.epochs=1", "train.batch_size=4", "train.grad_accum=1", "train.lr=1e-3"]
    for method in ("rmu", "npo+gd", "simnpo+gd", "ga+gd"):
        out = tmp_path / method.replace("+", "_")
        assert main(["run", *common, f"method={method}", f"output_dir={out}"]) == 0
        metrics = read_json(RunDirectory(out).metrics_file)
        assert metrics["task"] == "wmdp_bio" and metrics["n"] == 8 and metrics["run"]["n_forget"] >= 2
    capsys.readouterr()
    assert main(["run", *common[:4], "method=rmu", "data.forget_corpus=nothing.jsonl",
                 f"output_dir={tmp_path / 'bad'}"]) == 2
    assert "data.forget_corpus: nothing.jsonl" in capsys.readouterr().err
    assert main(["run", *common[:4], "method=rmu", f"output_dir={tmp_path / 'bad2'}"]) == 2
    assert "data.forget_corpus (a text file) or data.forget_split" in capsys.readouterr().err


def test_a_corpus_that_tokenizes_to_nothing_is_named():
    from unlearn.data.text import chunk_stream

    class Silent:
        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": []}

    with pytest.raises(DataError, match="tokenizes to nothing"):
        chunk_stream(Silent(), ["\u200b"], 32)


def test_every_description_is_the_installed_harness_s_own():
    """Our prompts take each task's description line from HARNESS_TOPICS; the harness's task configs are the truth."""
    import yaml

    from unlearn.tasks.multiple_choice.scoring import DESCRIPTION, HARNESS_TOPICS

    lm_eval = pytest.importorskip("lm_eval")
    tasks = Path(lm_eval.__file__).parent / "tasks"
    files = {p.stem: p for p in (tasks / "wmdp").glob("wmdp_*.yaml")}
    files |= {p.stem: p for p in (tasks / "mmlu" / "default").glob("mmlu_*.yaml")}
    assert set(files) == set(HARNESS_TOPICS)  # every WMDP domain and MMLU subject, nothing else
    wrong = {name: (yaml.safe_load(path.read_text())["description"], DESCRIPTION.format(topic=HARNESS_TOPICS[name]))
             for name, path in files.items()
             if yaml.safe_load(path.read_text())["description"] != DESCRIPTION.format(topic=HARNESS_TOPICS[name])}
    assert not wrong, wrong
    assert HARNESS_TOPICS["wmdp_cyber"] == "cybersecurity"

"""Record loading in the three layouts, validation messages, the real TOFU files, eval sets, pairing."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TOFU_DIR
from unlearn.data.files import read_records, read_text_lines
from unlearn.data.pairing import pair_forget_items
from unlearn.errors import DataError
from unlearn.tasks.tofu.data import TofuData, retain_split_for
from unlearn.tasks.tofu.task import TOFU

ROWS = [{"question": f"q{i}?", "answer": f"a{i}."} for i in range(5)]


@pytest.mark.parametrize("layout", ["jsonl", "array", "batches"])
def test_three_layouts_load_the_same(tmp_path, layout):
    path = tmp_path / "split.json"
    if layout == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    elif layout == "array":
        path.write_text(json.dumps(ROWS))
    else:
        path.write_text(json.dumps(ROWS[:3]) + "\n" + json.dumps(ROWS[3:]) + "\n")
    records = read_records(path)
    assert [(r.question, r.answer) for r in records] == [(r["question"], r["answer"]) for r in ROWS]
    assert records[4].source == f"{path}:4"


def test_validation_names_file_row_and_field(tmp_path):
    path = tmp_path / "bad.json"
    rows = [*ROWS[:2], {"question": "q?"}, *ROWS[3:]]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError, match=r"bad\.json: row 2 \(line 3\): field 'answer' is missing"):
        read_records(path)
    path.write_text(json.dumps([{"question": "q?", "answer": 3}]))
    with pytest.raises(DataError, match=r"row 0: field 'answer' must be a string"):
        read_records(path)
    path.write_text(json.dumps([{"question": " ", "answer": "a"}]))
    with pytest.raises(DataError, match=r"field 'question' is empty"):
        read_records(path)
    path.write_text(json.dumps([{"question": "q", "answer": "a", "paraphrased_answer": "p", "perturbed_answer": []}]))
    with pytest.raises(DataError, match=r"'perturbed_answer' must be a non-empty list"):
        read_records(path, require=("question", "answer", "paraphrased_answer", "perturbed_answer"))
    path.write_text('{"question": "q", "answer": "a"}\n{"question": broken}\n')
    with pytest.raises(DataError, match=r"line 2 is not valid JSON"):
        read_records(path)
    path.write_text("")
    with pytest.raises(DataError, match="file is empty"):
        read_records(path)


def test_missing_split_lists_available(bench_dir):
    with pytest.raises(DataError, match=r"split 'forget07' not found .* available: .*forget01"):
        TofuData(bench_dir).split("forget07")
    with pytest.raises(DataError, match="forgetXX"):
        TofuData(bench_dir).retain_split("forget")


def test_hub_name_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"could not load split 'forget10' of 'locuslab/TOFU'.*local directory"):
        TofuData("locuslab/TOFU").split("forget10")
    with pytest.raises(DataError, match="neither a directory nor a Hugging Face dataset name"):
        TofuData("no/such/dir/here")


def test_retain_complement(bench_dir, tmp_path):
    data = TofuData(bench_dir)
    assert retain_split_for("forget05") == "retain95"
    forget, retain = data.forget_split("forget10"), data.retain_split("forget10")
    full = data.split("full")
    assert len(forget) + len(retain) == len(full)
    assert {(r.question, r.answer) for r in forget}.isdisjoint({(r.question, r.answer) for r in retain})
    # without a retain file the complement is derived from full
    for name in ("full", "forget10"):
        (tmp_path / f"{name}.json").write_text((bench_dir / f"{name}.json").read_text())
    derived = TofuData(tmp_path).retain_split("forget10")
    assert [(r.question, r.answer) for r in derived] == [(r.question, r.answer) for r in retain]


def test_real_tofu_rows_load():
    """Rows of the TOFU release itself (tests/data/tofu: authors 1-3 and 199-200, forget01 as released)."""
    data = TofuData(TOFU_DIR)
    full = data.split("full")
    assert len(full) == 100 and full[0].question.startswith("Who is this celebrated LGBTQ+ author")
    assert data.forget_split("forget01") == full[60:]  # TOFU's forget01: the last two authors of full
    assert data.retain_split("forget01") == full[:60]  # no retain99 file here: full without the forget rows
    sets = TOFU.eval_sets(data, "forget01")
    assert {k: (v.set_type, len(v.records)) for k, v in sets.items()} == {
        "forget": ("forget", 10), "retain": ("retain", 40), "real_authors": ("option_normalised", 10),
        "world_facts": ("option_normalised", 10)}
    assert all(len(r.perturbed_answers) == 5 for r in sets["forget"].records)
    assert all(len(r.perturbed_answers) == 3 for r in sets["world_facts"].records)
    assert [r.question for r in sets["retain"].records] == [r.question for r in full[:40]]
    assert len(data.idk_templates()) == 100
    array = read_records(TOFU_DIR / "array_layout.json")  # the JSON-array layout other sources ship
    assert [(r.question, r.answer) for r in array] == [(r.question, r.answer) for r in full[60:70]]
    assert len(read_records(TOFU_DIR / "real_authors.json")[0].options) == 4


def test_idk_templates_choice(bench_dir, tmp_path):
    data = TofuData(bench_dir)
    assert len(data.idk_templates("auto")) == 100
    (tmp_path / "mine.txt").write_text("No idea.\n\nNot sure.\n")
    assert data.idk_templates(str(tmp_path / "mine.txt")) == ["No idea.", "Not sure."]
    (tmp_path / "full.json").write_text((bench_dir / "full.json").read_text())
    bare = TofuData(tmp_path)
    with pytest.raises(DataError, match=r"idk\+ap needs IDK templates.*data\.idk_path"):
        bare.idk_templates("auto", needed_by="method idk+ap")
    assert len(bare.idk_templates("builtin")) == 100
    with pytest.raises(DataError, match="no non-empty lines"):
        (tmp_path / "empty.txt").write_text("\n")
        read_text_lines(tmp_path / "empty.txt")


def test_pairing_follows_spec_formula():
    import numpy as np

    pairing = pair_forget_items(6, 10, 4, seed=3)
    for i in range(6):
        rng = np.random.default_rng([3, i])
        r_i = int(rng.integers(10))
        assert pairing.retain_index[i] == (i + r_i) % 10
        assert pairing.idk_index[i] == int(rng.integers(4))
    assert pair_forget_items(6, 10, 4, seed=3) == pairing
    assert pair_forget_items(6, 10, 4, seed=4) != pairing
    # a prefix of the forget set keeps its pairing (pairing depends on i only, not on the set size)
    assert pair_forget_items(3, 10, 4, seed=3).retain_index == pairing.retain_index[:3]


def test_pairing_rejects_empty_forget_set():
    with pytest.raises(DataError, match="forget set is empty"):
        pair_forget_items(0, 10, 4, seed=0)


def test_tofu_subset(tmp_path):
    from unlearn.tasks.tofu.subset import make_subset

    out, forget_name = make_subset(TOFU_DIR, tmp_path / "sub", n_authors=2, forget_authors=1)
    assert forget_name == "forget50"
    data, tofu = TofuData(out), TofuData(TOFU_DIR)
    full = tofu.split("full")
    assert data.split("full") == full[:40]
    assert data.forget_split("forget50") == full[20:40]
    assert data.retain_split("forget50") == full[:20]
    sets = TOFU.eval_sets(data, "forget50")
    assert [r.question for r in sets["forget"].records] == [r.question for r in full[20:40]]
    assert all(len(r.perturbed_answers) == 5 for r in sets["forget"].records)
    retain_questions = {r.question for r in sets["retain"].records}
    assert len(sets["retain"].records) == 20 and not retain_questions & {r.question for r in full[20:40]}
    assert len(sets["real_authors"].records) == 10 and len(data.idk_templates()) == 100
    with pytest.raises(DataError, match="covers 2 authors"):
        make_subset(TOFU_DIR, tmp_path / "big", n_authors=4, forget_authors=1)

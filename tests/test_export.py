"""`unlearn export RUN_DIR OUT`: a Hugging Face model folder with a model card, loadable with plain transformers."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from unlearn.cli import main
from unlearn.runs import RunDirectory

COMMON = ["progress=false", "train.max_steps=2", "train.batch_size=4", "train.grad_accum=1", "data.max_length=96",
          "eval.max_length=40", "eval.generate=false", "eval.sets=[forget]", "eval.forget_rows=6"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, bench_dir, tiny_model_dir):
    out = tmp_path_factory.mktemp("export")
    for name, extra in (("full", []), ("lora", ["train.lora=true", "train.lora_r=4", "train.lr=1e-2"])):
        assert main(["run", f"model={tiny_model_dir}", f"data={bench_dir}", "method=npo+gd", "save_model=true",
                     f"output_dir={out / name}", *COMMON, *extra]) == 0
    return out


def _logits(model, tokenizer) -> torch.Tensor:
    ids = tokenizer("Question: who wrote the book? Answer:", return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits


def test_the_exported_folder_loads_with_plain_transformers_and_scores_the_same(runs, tmp_path, bench_dir, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "exported"
    assert main(["export", str(runs / "full"), str(out)]) == 0
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    assert not (out / "weights.sha256.json").exists()  # our cache stays behind
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    saved = AutoModelForCausalLM.from_pretrained(RunDirectory(runs / "full").model_dir)
    assert torch.equal(_logits(model, tokenizer), _logits(saved, tokenizer))
    # the forget-set log-likelihoods of the exported model, evaluated anew, are the run's own
    capsys.readouterr()
    assert main(["eval", f"model={out}", f"data={bench_dir}", f"output_dir={tmp_path / 'eval'}", *COMMON]) == 0
    again = json.loads(RunDirectory(tmp_path / "eval").metrics_file.read_text())["sets"]["forget"]
    own = json.loads(RunDirectory(runs / "full").metrics_file.read_text())["sets"]["forget"]
    assert again["prob"] == pytest.approx(own["prob"], rel=1e-6) and again["n"] == own["n"] == 6


def test_the_model_card_says_what_was_done_and_measured(runs, tmp_path, tiny_model_dir):
    out = tmp_path / "exported"
    assert main(["export", str(runs / "full"), str(out)]) == 0
    card = (out / "README.md").read_text()
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    meta = yaml.safe_load(front)
    assert meta["base_model"] == str(tiny_model_dir) and meta["library_name"] == "transformers"
    assert {"unlearn", "machine-unlearning", "npo+gd"} <= set(meta["tags"])
    own = json.loads(RunDirectory(runs / "full").metrics_file.read_text())
    forget = own["sets"]["forget"]
    lo, hi = forget["ci95"]["prob"]
    assert f"| {forget['prob']:.3f} [{lo:.3f}, {hi:.3f}] |" in body  # the metric with its interval
    assert "recipe: `tofu/npo:npo_paper`" in body and "Zhang et al." in body
    assert f"config sha256: `{own['provenance']['config_sha256']}`" in body
    assert own["provenance"]["saved_model"]["weights_sha256"] in body and "@software{unlearn" in body


def test_a_lora_run_exports_its_adapter_for_peft(runs, tmp_path, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "adapter"
    assert main(["export", str(runs / "lora"), str(out), "--adapter"]) == 0
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    assert yaml.safe_load((out / "README.md").read_text().split("---\n")[1])["library_name"] == "peft"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out)
    merged = AutoModelForCausalLM.from_pretrained(RunDirectory(runs / "lora").model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert torch.allclose(_logits(adapted, tokenizer), _logits(merged, tokenizer), atol=1e-4)
    assert not torch.allclose(_logits(base, tokenizer), _logits(merged, tokenizer), atol=1e-4)  # it trained
    merged_out = tmp_path / "merged"
    assert main(["export", str(runs / "lora"), str(merged_out)]) == 0
    assert not (merged_out / "adapter").exists() and (merged_out / "model.safetensors").is_file()


def test_bad_exports_are_one_line_before_anything_is_written(runs, tmp_path, capsys):
    unsaved = tmp_path / "unsaved"
    (unsaved).mkdir()
    RunDirectory(unsaved).metrics_file.write_text(RunDirectory(runs / "full").metrics_file.read_text())
    full_out = tmp_path / "taken"
    full_out.mkdir()
    (full_out / "x").write_text("mine")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    cases = [([str(tmp_path / "missing"), str(tmp_path / "o1")], "no such run directory"),
             ([str(unfinished), str(tmp_path / "o2")], "is not a finished run"),
             ([str(unsaved), str(tmp_path / "o3")], "has no saved model"),
             ([str(runs / "full"), str(full_out)], "is not an empty folder"),
             ([str(runs / "full"), str(tmp_path / "o4"), "--adapter"], "keeps no LoRA adapter")]
    for argv, message in cases:
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert [p.name for p in full_out.iterdir()] == ["x"]
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))

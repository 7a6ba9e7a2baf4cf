"""Provenance: every result says what produced it — the toolkit and its commit, the libraries, the device, the seed,
the command line, the configuration, the data and the model by content, the task and its version."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from importlib.metadata import version
from pathlib import Path

import torch

import unlearn
from unlearn import provenance as prov
from unlearn.runs import RunDirectory


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_weights_digest_is_the_files_digests_hashed_by_name(tmp_path):
    (tmp_path / "b.bin").write_bytes(b"second")
    (tmp_path / "a.safetensors").write_bytes(b"first")
    (tmp_path / "config.json").write_text("{}")  # not a weight file
    expected = _sha(f"a.safetensors:{_sha(b'first')}\nb.bin:{_sha(b'second')}\n".encode())
    assert prov.weights_sha256(tmp_path) == expected
    assert prov.weights_sha256(tmp_path, gguf_file="b.bin") == _sha(f"b.bin:{_sha(b'second')}\n".encode())
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prov.weights_sha256(empty) is None


def test_a_cached_digest_is_reused_until_the_file_changes(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights")
    real = prov.weights_sha256(tmp_path, cache=True)
    cache = json.loads((tmp_path / prov.WEIGHTS_CACHE).read_text())
    assert cache["model.safetensors"]["sha256"] == _sha(b"weights")
    cache["model.safetensors"]["sha256"] = "f" * 64  # same size and time: the cache is believed, not re-read
    (tmp_path / prov.WEIGHTS_CACHE).write_text(json.dumps(cache))
    assert prov.weights_sha256(tmp_path, cache=True) == _sha(f"model.safetensors:{'f' * 64}\n".encode())
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: hashed again
    assert prov.weights_sha256(tmp_path, cache=True) == real


def test_rows_and_names_of_the_data_files(tmp_path):
    (tmp_path / "array.json").write_text('[{"a": 1}, {"a": 2}, {"a": 3}]')
    (tmp_path / "lines.json").write_text('{"a": 1}\n\n{"a": 2}\n')
    (tmp_path / "text.txt").write_text("free text\n")
    outside = tmp_path.parent / f"{tmp_path.name}_outside.jsonl"
    outside.write_text('{"a": 1}\n')
    reads = {p.resolve(): _sha(p.read_bytes()) for p in (tmp_path / "lines.json", tmp_path / "array.json",
                                                          tmp_path / "text.txt", outside)}
    files = prov.data_files(reads, str(tmp_path))
    assert [(f["file"], f["rows"]) for f in files] == [(str(outside.resolve()), 1), ("array.json", 3),
                                                      ("lines.json", 2), ("text.txt", None)]
    assert files[1]["sha256"] == _sha((tmp_path / "array.json").read_bytes())


def test_the_commit_is_recorded_only_for_a_checkout_of_the_toolkit(tmp_path):
    assert prov.git_state(tmp_path) is None  # not a checkout at all
    package = Path(unlearn.__file__).resolve().parent
    state = prov.git_state(package)
    head = subprocess.run(["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        assert state is None  # installed, not a checkout
    else:
        assert state["commit"] == head.stdout.strip() and isinstance(state["dirty"], bool)


def test_the_source_digest_changes_with_any_source_file_and_only_with_them(tmp_path):
    package = tmp_path / "unlearn"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    first = prov.source_sha256(package)
    expected = hashlib.sha256()
    for name, text in (("a.py", "x = 1\n"), ("sub/b.py", "y = 2\n")):  # by relative path, in sorted order
        expected.update(f"{name}\n".encode())
        expected.update(hashlib.sha256(text.encode()).digest())
    assert first == expected.hexdigest()
    (package / "notes.txt").write_text("not code")
    assert prov.source_sha256(package) == first
    (package / "sub" / "b.py").write_text("y = 3\n")  # an uncommitted edit that the commit would not show
    assert prov.source_sha256(package) != first
    assert prov.toolkit()["source_sha256"] == prov.source_sha256(Path(unlearn.__file__).parent)


def test_the_installed_version_is_the_package_version():
    assert version(prov.DISTRIBUTION) == unlearn.__version__


def test_a_run_records_its_provenance(tmp_path, bench_dir, tiny_model_dir):
    out = unlearn.run(model=str(tiny_model_dir), data=str(bench_dir), method="ga+gd", output_dir=str(tmp_path / "run"),
                      progress=False, save_model=True,
                      **{"train.max_steps": 1, "train.batch_size": 4, "train.grad_accum": 1, "train.seed": 3,
                         "data.max_length": 96, "eval.max_length": 40, "eval.generate": False,
                         "eval.sets": ["forget"]})
    run = RunDirectory(out.run_dir)
    p = out.results.provenance
    assert p == json.loads(run.metrics_file.read_text())["provenance"]  # in metrics.json, read back
    assert p["toolkit"]["name"] == "unlearn" and p["toolkit"]["version"] == unlearn.__version__
    assert p["versions"]["torch"] == torch.__version__ and p["versions"]["transformers"] is not None
    assert p["device"]["type"] == ("cuda" if torch.cuda.is_available() else "cpu") and p["device"]["count"] >= 1
    assert p["seed"] == 3 and p["task"] == {"name": "tofu", "version": 2}
    assert p["config_sha256"] == _sha(run.config_file.read_bytes())
    files = {f["file"]: f for f in p["data"]}
    forget = bench_dir / "forget10.json"
    assert files["forget10.json"]["sha256"] == _sha(forget.read_bytes())
    assert files["forget10.json"]["rows"] == prov.count_rows(forget) > 0
    assert "forget10_perturbed.json" in files  # read by the evaluation, not the training
    assert p["model"]["path"] == str(tiny_model_dir)
    assert p["model"]["weights_sha256"] == prov.weights_sha256(tiny_model_dir)
    saved = p["saved_model"]["weights_sha256"]
    assert saved == prov.weights_sha256(run.model_dir) != p["model"]["weights_sha256"]  # it trained
    assert (run.model_dir / prov.WEIGHTS_CACHE).is_file()  # cached beside the saved model for the next stage


def test_an_evaluation_records_the_model_it_evaluated(tmp_path, bench_dir, tiny_model_dir):
    out = unlearn.evaluate(model=str(tiny_model_dir), data=str(bench_dir), output_dir=str(tmp_path / "eval"),
                           progress=False, **{"eval.max_length": 40, "eval.generate": False, "eval.sets": ["forget"]})
    p = out.results.provenance
    assert p["model"]["weights_sha256"] == prov.weights_sha256(tiny_model_dir)
    assert "forget10_perturbed.json" in {f["file"] for f in p["data"]}  # TOFU's evaluation file of the split
    assert "saved_model" not in p


def test_a_broken_json_array_has_unknown_rows_not_an_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("[1, 2")
    assert prov.count_rows(path) is None

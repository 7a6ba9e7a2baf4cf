"""Cross-run reuse (``cache_dir``, on in sweeps): runs from the same model and data share the starting model's
evaluation and NPO's reference log-probs, with numbers identical to computing them; anything in the key that
changes makes a new entry, and an entry that does not hold its key is computed again."""

from __future__ import annotations

import json

import torch

from unlearn.cli import main
from unlearn.config import RunConfig, load_config
from unlearn.data.formatting import EncodedSample
from unlearn.data.parts import PartData
from unlearn.experiments.plan import plan_unlearning
from unlearn.experiments.reuse import EVALUATION, REFERENCE, SharedCache, key_digest, parts_digest
from unlearn.io import read_json, read_jsonl
from unlearn.runs import RunDirectory


def _plan(tmp_path, *overrides: str):
    cfg = load_config(RunConfig, None, ["model=m", "data=d", f"output_dir={tmp_path / 'run'}",
                                        f"cache_dir={tmp_path / 'cache'}", *overrides])
    return plan_unlearning(cfg)


PROVENANCE = {"toolkit": {"source_sha256": "code"}, "versions": {"torch": "2"}, "device": {"type": "cpu"},
              "model": {"weights_sha256": "w0"}, "data": [{"file": "forget10.json", "sha256": "d0"}]}


def _key(tmp_path, *overrides: str, provenance=PROVENANCE) -> str:
    plan = _plan(tmp_path, *overrides)
    cache = SharedCache.for_run(plan, json.loads(json.dumps(provenance)))
    return key_digest(cache.evaluation_key(plan, provenance))


def test_the_starting_evaluation_is_shared_across_methods_and_training_settings_only(tmp_path):
    base = _key(tmp_path)
    # what only changes the training: the same starting evaluation
    assert _key(tmp_path, "method=npo+gd", "train.lr=3e-5", "train.epochs=2", "forget.beta=0.2") == base
    # what changes the evaluation of the starting model: a new entry
    for overrides in (["eval.max_length=64"], ["eval.batch_size=8"], ["train.seed=1"], ["data.forget_split=forget05"],
                      ["train.lora=true"], ["limit=3"], ["eval.retain_reference=" + str(tmp_path)]):
        assert _key(tmp_path, *overrides) != base, overrides
    for changed in ({"model": {"weights_sha256": "w1"}}, {"data": [{"file": "forget10.json", "sha256": "d1"}]},
                    {"toolkit": {"source_sha256": "edited"}}, {"versions": {"torch": "3"}}):
        assert _key(tmp_path, provenance=PROVENANCE | changed) != base, changed
    # a weight edit's epoch 0 is its edit of the unchanged weights: its parameters belong to the key
    edit = _key(tmp_path, "method=task_vector")
    assert edit != base and _key(tmp_path, "method=task_vector", "forget.alpha=2") != edit


def test_no_cache_dir_or_no_weights_digest_shares_nothing(tmp_path):
    plan = plan_unlearning(load_config(RunConfig, None, ["model=m", "data=d", f"output_dir={tmp_path}"]))
    assert SharedCache.for_run(plan, dict(PROVENANCE)) is None
    no_digest = PROVENANCE | {"model": {"weights_sha256": None}}
    assert SharedCache.for_run(_plan(tmp_path), no_digest) is None


def test_epoch_zero_is_computed_once_then_read_and_a_foreign_entry_is_recomputed(tmp_path, caplog):
    calls = []

    def hook(epoch, model):
        calls.append(epoch)
        return {"forget": {"prob": 0.25 + epoch, "rows": [1, 2]}}

    plan = _plan(tmp_path)
    first_prov, second_prov = json.loads(json.dumps(PROVENANCE)), json.loads(json.dumps(PROVENANCE))
    first = SharedCache.for_run(plan, first_prov)
    key = first.evaluation_key(plan, PROVENANCE)
    shared = first.share_epoch_zero(hook, key)
    assert shared(0, None) == {"forget": {"prob": 0.25, "rows": [1, 2]}} and calls == [0]
    assert first_prov["cache"] == {EVALUATION: {"entry": key_digest(key), "reused_from": None}}
    second = SharedCache.for_run(plan, second_prov)
    again = second.share_epoch_zero(hook, key)
    assert again(0, None) == {"forget": {"prob": 0.25, "rows": [1, 2]}} and calls == [0]  # read, not computed
    assert second_prov["cache"][EVALUATION]["reused_from"] == str(plan.run.path)
    assert again(1, None)["forget"]["prob"] == 1.25 and calls == [0, 1]  # later epochs are the run's own
    # an entry at the key's path that holds another key (a damaged or hand-copied cache) is never trusted
    path = tmp_path / "cache" / EVALUATION / f"{key_digest(key)}.json"
    entry = read_json(path)
    path.write_text(json.dumps(entry | {"key": {**entry["key"], "model_sha256": "other"}}))
    assert second.share_epoch_zero(hook, key)(0, None)["forget"]["prob"] == 0.25 and calls == [0, 1, 0]
    assert "does not hold the entry of this key" in caplog.text
    path.write_text("{")
    assert second.share_epoch_zero(hook, key)(0, None)["forget"]["prob"] == 0.25 and calls == [0, 1, 0, 0]


def _parts(answer: int) -> PartData:
    samples = [EncodedSample((1, 2, answer), (-100, 2, answer), 1), EncodedSample((1, 3), (-100, 3), 1)]
    return PartData({"forget": samples, "retain": samples}, pad_id=0, max_length=8)


def test_reference_logps_are_stored_bit_for_bit_and_keyed_by_tokens_and_reference(tmp_path):
    plan = _plan(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"forget": torch.tensor([-1.2345678, -0.5], dtype=torch.float32)}

    settings = {"batch_size": 4, "sort_by_length": True, "dtype": "torch.float32", "perturbation": None}
    cache = SharedCache.for_run(plan, json.loads(json.dumps(PROVENANCE)))
    parts = parts_digest(_parts(4), ["forget"], ())
    first = cache.reference_logp(compute, reference_sha256="w0", parts=parts, settings=settings)
    second = cache.reference_logp(compute, reference_sha256="w0", parts=parts, settings=settings)
    assert len(calls) == 1 and torch.equal(first["forget"], second["forget"])
    assert cache.used[REFERENCE]["reused_from"] == str(plan.run.path)
    assert len(list((tmp_path / "cache" / REFERENCE).glob("*.safetensors"))) == 1
    other_tokens = parts_digest(_parts(5), ["forget"], ())
    assert other_tokens != parts and parts_digest(_parts(4), ["forget"], ["forget"]) != parts  # padded to max
    cache.reference_logp(compute, reference_sha256="w0", parts=other_tokens, settings=settings)
    cache.reference_logp(compute, reference_sha256="w1", parts=parts, settings=settings)
    cache.reference_logp(compute, reference_sha256="w0", parts=parts, settings=settings | {"batch_size": 8})
    assert len(calls) == 4
    cache.reference_logp(compute, reference_sha256=None, parts=parts, settings=settings)  # unknown reference
    assert len(calls) == 5 and len(list((tmp_path / "cache" / REFERENCE).glob("*.safetensors"))) == 4


def _without_volatile(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("seconds", "provenance", "run")}


def test_a_sweep_shares_and_its_numbers_equal_the_unshared_sweeps(bench_dir, tiny_model_dir, tmp_path, capsys):
    """Two run processes at once (the second waits on the lock for the first's entries) against one unshared run
    after the other in this process."""
    jobs = 2
    common = [f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "model.template=qa",
              "data.max_length=96", "eval.max_length=48", "eval.batch_size=32", "eval.bootstrap=0",
              "sweep.forget_metric=forget_efficacy_without_es", "sweep.utility_metric=model_utility_9"]
    args = ["sweep", *common, "method=npo+gd", "train.lr=1e-3,3e-3", "train.max_steps=2", "train.batch_size=4",
            "train.grad_accum=1", "train.eval_every_epoch=true", "sweep.threads=1", f"sweep.jobs={jobs}"]
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    assert main([*args, f"output_dir={shared}"]) == 0
    assert main([*args, "sweep.reuse=false", "sweep.jobs=1", f"output_dir={alone}"]) == 0
    assert len(list((shared / "cache" / EVALUATION).glob("*.json"))) == 1
    assert len(list((shared / "cache" / REFERENCE).glob("*.safetensors"))) == 1 and not (alone / "cache").exists()
    sources = {}
    for path in sorted((shared / "runs").iterdir()):
        run, other = RunDirectory(path), RunDirectory(alone / "runs" / path.name)
        assert read_jsonl(run.epochs_file) == read_jsonl(other.epochs_file)  # epoch 0 included
        assert read_jsonl(run.train_log_file) == read_jsonl(other.train_log_file)  # the same reference
        mine, theirs = read_json(run.metrics_file), read_json(other.metrics_file)
        assert _without_volatile(mine) == _without_volatile(theirs) and "cache" not in theirs["provenance"]
        sources[str(path)] = {k: v["reused_from"] for k, v in mine["provenance"]["cache"].items()}
    for kind in (EVALUATION, REFERENCE):  # one run computed each entry, the other read it
        computed = [run for run, used in sources.items() if used[kind] is None]
        assert len(computed) == 1 and [used[kind] for used in sources.values() if used[kind]] == computed
    # the cache is where runs share, not what they compute: the unshared sweep's runs are this sweep's, finished
    capsys.readouterr()
    assert main([*args, f"output_dir={alone}"]) == 0
    assert "2 runs, 2 finished, 0 to run" in capsys.readouterr().out

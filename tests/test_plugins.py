"""The public door, tested from outside: the example plugin package under tests/plugins/ adds a forget objective
(``capped_ga``) and a task (``forget_nll``) without touching src/. It is found through its entry points (a
distribution's metadata on the path, as `pip install` leaves it) and through ``--plugin FILE``; a run trains with it
through the CLI, the Python API and a sweep in several processes. Everything that imports the plugin runs in its own
process, so the registries of this test process stay the built-in ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

from tests.test_reliability import _error
from unlearn.cli import main
from unlearn.runs import RunDirectory

PLUGIN = Path(__file__).parent / "plugins" / "unlearn_example_plugin"
SOURCE = PLUGIN / "src" / "unlearn_example_plugin"
ROOT = Path(__file__).resolve().parents[1]


def _installed(tmp_path: Path) -> Path:
    """A site directory holding the plugin's distribution metadata, entry points copied from its pyproject.toml —
    what `pip install tests/plugins/unlearn_example_plugin` writes, without installing into this environment."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    info = tmp_path / "site" / f"unlearn_example_plugin-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
                     for group, eps in project["entry-points"].items())
    (info / "entry_points.txt").write_text(groups)
    return tmp_path / "site"


def _python(code: str, tmp_path: Path, path: list[Path] = (), timeout: int = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k != "UNLEARN_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in path] + [str(ROOT)])
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_installed_plugin_is_listed_and_trains_through_the_cli(tmp_path, bench_dir, tiny_model_dir):
    site = _installed(tmp_path)
    out = _python(f"""
        import json, sys, torch
        from unlearn.cli import main

        assert main(["methods"]) == 0 and main(["tasks"]) == 0  # found through the entry points alone
        assert "unlearn_example_plugin.capped_ga" in sys.modules
        from unlearn_example_plugin.capped_ga import capped_ga_loss

        # the loss by hand: mean_b max(0, tau - NLL_b)
        nll = torch.tensor([1.0, 3.0, 2.5], requires_grad=True)
        loss = capped_ga_loss(nll, 2.75)
        assert abs(loss.item() - (1.75 + 0.0 + 0.25) / 3) < 1e-7
        loss.backward()
        assert torch.allclose(nll.grad, torch.tensor([-1 / 3, 0.0, -1 / 3]))  # no push on the answer past tau

        common = ["model={tiny_model_dir}", "data={bench_dir}", "task=forget_nll", "progress=false",
                  "data.max_length=128"]
        assert main(["eval", *common, "output_dir=start"]) == 0
        assert main(["run", *common, "method=capped_ga+gd", "forget.tau=50", "train.max_steps=6",
                     "train.batch_size=4", "train.grad_accum=1", "train.lr=3e-3", "output_dir=run"]) == 0
        before, after = (json.load(open(f"{{d}}/metrics.json"))["forget_nll"] for d in ("start", "run"))
        print("NLL", before, after)
    """, tmp_path, [site, PLUGIN / "src"])
    assert "capped_ga    gradient ascent on each forget answer's average NLL" in out  # unlearn methods
    assert "[plugin: unlearn_example_plugin.capped_ga]" in out  # said where it comes from
    assert "forget_nll: average answer NLL on the forget split" in out  # unlearn tasks
    before, after = map(float, next(line for line in out.splitlines() if line.startswith("NLL")).split()[1:])
    assert after > before + 0.1, (before, after)  # it unlearns: the forget answers became less likely
    config = RunDirectory(tmp_path / "run").config_file.read_text()
    assert "name: capped_ga+gd" in config and "tau: 50" in config


def test_plugin_file_through_the_python_api(tmp_path, bench_dir, tiny_model_dir):
    out = _python(f"""
        import unlearn
        result = unlearn.run(plugins=["{SOURCE / 'capped_ga.py'}", "{SOURCE / 'forget_nll.py'}"],
                             model="{tiny_model_dir}", data="{bench_dir}", method="capped_ga+gd", task="forget_nll",
                             output_dir="api_run", progress=False,
                             **{{"train.max_steps": 2, "train.batch_size": 4, "train.grad_accum": 1,
                                "data.max_length": 128}})
        print("RESULT", result.run_dir, result.metrics["forget_nll"], result.results.run.method["name"])
    """, tmp_path)
    line = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    assert line[1] == "api_run" and float(line[2]) > 0 and line[3] == "capped_ga+gd"
    assert json.loads(RunDirectory(tmp_path / "api_run").metrics_file.read_text())["task"] == "forget_nll"


@pytest.mark.slow
def test_a_plugin_method_in_a_sweep_of_several_processes(tmp_path, bench_dir, tiny_model_dir):
    """`--plugin` reaches the sweep's own `unlearn run` processes (through UNLEARN_PLUGINS)."""
    out = _python(f"""
        from unlearn.cli import main
        code = main(["--plugin", "{SOURCE / 'capped_ga.py'}", "--plugin", "{SOURCE / 'forget_nll.py'}", "sweep",
                     "model={tiny_model_dir}", "data={bench_dir}", "task=forget_nll", "method=capped_ga+gd",
                     "forget.tau=5,50", "train.epochs=1", "train.batch_size=4", "train.grad_accum=1",
                     "train.lr=1e-3", "data.max_length=96", "progress=false", "train.eval_every_epoch=true",
                     "sweep.forget_metric=forget_nll", "sweep.utility_metric=forget_nll", "sweep.jobs=2",
                     "sweep.threads=1", "output_dir=sweep"])
        print("CODE", code)
    """, tmp_path)
    assert "CODE 0" in out, out
    runs = sorted((tmp_path / "sweep" / "runs").glob("*/metrics.json"))
    assert len(runs) == 2 and len(list((tmp_path / "sweep" / "logs").glob("*.log"))) == 2  # two processes
    assert {json.loads(r.read_text())["run"]["method"]["name"] for r in runs} == {"capped_ga+gd"}


def test_a_broken_or_clashing_plugin_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("UNLEARN_PLUGINS", raising=False)
    broken = tmp_path / "broken.py"
    broken.write_text("import a_module_nobody_has\n")
    err = _error(capsys, ["--plugin", str(broken), "methods"])
    assert f"plugin {broken} failed to import (ModuleNotFoundError: No module named 'a_module_nobody_has')" in err
    clash = tmp_path / "clash.py"
    clash.write_text(textwrap.dedent("""
        from unlearn.extend import ForgetObjective, register_forget_objective

        class MyGA(ForgetObjective):
            name = "GA"
            summary = "a second ga"

        register_forget_objective(MyGA)
    """))
    err = _error(capsys, [f"--plugin={clash}", "methods"])
    assert "forget objective 'ga' is registered twice: by unlearn.objectives.components and by" in err
    missing = _error(capsys, ["methods", "plugins=[no_such_plugin_module]"])
    assert "plugin no_such_plugin_module failed to import" in missing
    assert main(["methods"]) == 0 and "UNLEARN_PLUGINS" not in os.environ  # nothing was left loaded or exported


def test_the_extending_guide_shows_the_example_plugin_as_it_is():
    """docs/extending.md's worked examples are the files the tests above run, character for character."""
    import re

    guide = (ROOT / "docs" / "extending.md").read_text()
    blocks = re.findall(r"```(?:python|toml)\n(.*?)```", guide, re.S)
    for path in (SOURCE / "capped_ga.py", SOURCE / "forget_nll.py", PLUGIN / "pyproject.toml"):
        assert path.read_text() in blocks, f"docs/extending.md does not show {path.name} as it is"
    assert len((SOURCE / "capped_ga.py").read_text().splitlines()) <= 35  # "your own method in 30 lines", nearly


SAMPLE_METRIC_PLUGIN = """
import numpy as np
from unlearn.extend import MetricSpec, register_sample_metric

register_sample_metric(MetricSpec("answer_tokens", "answer length in tokens", "set", True, "mean per set"),
                       ("greedy_hits",), lambda inputs: [len(h) for h in inputs["greedy_hits"]])
"""


def test_a_plugin_sample_metric_is_listed_scored_and_written_per_row(tmp_path, bench_dir, tiny_model_dir):
    """A per-sample metric through the door: `unlearn tasks` lists it for the tasks that provide its input, the
    evaluation averages it per set and writes it in every row; checked against the rows' own token counts."""
    plugin = tmp_path / "answer_tokens.py"
    plugin.write_text(SAMPLE_METRIC_PLUGIN)
    out = _python(f"""
        import json
        from unlearn.cli import main

        assert main(["--plugin", "{plugin}", "tasks"]) == 0
        assert main(["--plugin", "{plugin}", "eval", "model={tiny_model_dir}", "data={bench_dir}", "progress=false",
                     "data.max_length=128", "eval.generate=false", "eval.sets=[forget,retain]", "output_dir=ev"]) == 0
        print("SETS", json.dumps(json.load(open("ev/metrics.json"))["sets"]))
    """, tmp_path)
    listed = [line for line in out.splitlines() if line.strip().startswith("answer_tokens")]
    assert len(listed) == 5  # tofu, real_world and the three MUSE tasks: the tasks that provide greedy hits
    assert all("[plugin: unlearn_plugin_answer_tokens]" in line for line in listed)
    sets = json.loads(next(line for line in out.splitlines() if line.startswith("SETS"))[5:])
    for name in ("forget", "retain"):
        rows = [json.loads(line) for line in (RunDirectory(tmp_path / "ev").eval_dir / f"{name}.jsonl")
                .read_text().splitlines()]
        assert all(r["answer_tokens"] == r["gt_tokens"] == len(r["greedy_hits"]) for r in rows)
        assert sets[name]["answer_tokens"] == pytest.approx(sum(r["gt_tokens"] for r in rows) / len(rows))
        assert "answer_tokens" in sets[name]["ci95"]


@pytest.mark.parametrize("call, message", [
    ('MetricSpec("m", "m", "run", True, "x"), ("greedy_hits",), len', "its MetricSpec scope must be 'set'"),
    ('MetricSpec("m", "m", "set", True, "x"), ("logits",), len', "inputs must be some of greedy_hits, gt_loss"),
    ('MetricSpec("exact_memorization", "again", "set", True, "x"), ("greedy_hits",), len',
     "sample metric 'exact_memorization' is registered twice: by unlearn_baselines.metrics and by "
     "unlearn_plugin_bad_metric"),
])
def test_a_bad_sample_metric_is_one_line(call, message, capsys, tmp_path, monkeypatch):
    """Each fails at its first registration, so nothing is left registered in this process."""
    monkeypatch.delenv("UNLEARN_PLUGINS", raising=False)
    plugin = tmp_path / "bad_metric.py"
    plugin.write_text("from unlearn.extend import MetricSpec, register_sample_metric\n"
                      f"register_sample_metric({call})\n")
    assert message in _error(capsys, ["--plugin", str(plugin), "tasks"])

"""Reports: gradient weights against hand computation, report.md tables / plots / "why not" lines, the ES-free
labelling, ``unlearn compare`` and the CLI errors. Run directories are written by hand (no training)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from scipy import stats

from unlearn.cli import main
from unlearn.errors import UnlearnError
from unlearn.io import read_jsonl
from unlearn.rendering import gradient_weights as weights
from unlearn.rendering import plots
from unlearn.rendering.figures import EPOCHS_WHY
from unlearn.reporting import report
from unlearn.runs import RunDirectory
from unlearn.tasks.tofu import report as tofu_report

ES_REASON = "NLI classifier is not available offline"
N = 8
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------ synthetic runs
def _set(base: float, *, te: bool = True, es: bool = True) -> dict:
    values = {"rouge": base, "prob": base + 0.1, "truth_ratio": base + 0.2, "cosine_similarity": base + 0.05}
    if te:
        values["token_entropy"] = base + 0.15
    if es:
        values["entailment"] = base + 0.01
    out = dict(values, n=N)
    out["ci95"] = {k: [v - 0.032, v + 0.038] for k, v in values.items()}
    return out


def _closer_look(fe: float, mu: float, es: bool) -> dict:
    if es:
        return {"forget_efficacy": fe, "model_utility_18": mu, "unavailable": {}}
    return {"forget_efficacy": None, "model_utility_18": None, "unavailable": {"ES": ES_REASON},
            "forget_efficacy_without_es": fe, "model_utility_without_es": mu}


def _logp(epoch: int) -> list[float]:
    return [-10.0 - 2.0 * i - epoch * (1.0 + 0.3 * i) for i in range(N)]


TOKENS = [5 + 3 * i for i in range(N)]


def make_run(root: Path, name: str, *, method: dict | None, es: bool = True, n_epochs: int | None = 3,
             fq: float | None = 0.0123, mu9: float | None = 0.456, fe: float = 0.789, mu18: float = 0.345,
             reference: Path | None = None, forget_base: float = 0.512) -> Path:
    """A run directory as the pipelines write it (metrics.json, eval/*.jsonl, optionally epochs.jsonl)."""
    run = root / name
    (run / "eval").mkdir(parents=True)
    sets = {"forget": _set(forget_base, te=False, es=es), "retain": _set(0.4, es=es),
            "real_authors": _set(0.3, es=es), "world_facts": _set(0.2, es=es)}
    sets["forget"]["ci95"]["rouge"] = [0.48, 0.55]
    info: dict = {"kind": "unlearn" if method else "finetune", "forget_split": "forget10", "n_forget": N}
    if method:
        info["method"] = method
    metrics = {"sets": sets, "model_utility_9": mu9, "forget_quality": fq, "closer_look": _closer_look(fe, mu18, es),
               "run": info, "seconds": 12.5}
    if reference is not None:
        metrics["forget_quality_reference"] = str(reference)
    RunDirectory(run).metrics_file.write_text(json.dumps(metrics))
    for set_name in ("forget", "retain"):
        rows = [{"index": i, "question": f"{set_name} question {i} | with a pipe", "answer": f"answer {i}\nsecond line",
                 "generation": f"{name} says {i}", "truth_ratio": math.exp(0.3 * (i - 3.5)),
                 "rougeL_recall": 0.25} for i in range(N)]
        RunDirectory(run).eval_rows_file(set_name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    if n_epochs is not None:
        lines = [json.dumps({"epoch": k, "step": 2 * k, "sets": sets, "model_utility_9": mu9,
                             "forget_quality": 0.5 / (k + 1), "closer_look": _closer_look(fe - 0.1 * (n_epochs - k),
                                                                                           mu18 - 0.01 * k, es),
                             "forget_logp": _logp(k), "forget_tokens": TOKENS}) for k in range(n_epochs + 1)]
        RunDirectory(run).epochs_file.write_text("\n".join(lines) + "\n")
    return run


NPO = {"name": "npo+gd", "forget": {"objective": "npo", "beta": 0.3}, "retain": {"regularizer": "gd"},
       "forget_weight": 1.0, "retain_weight": 1.0}
SIMNPO = {"name": "simnpo+gd", "forget": {"objective": "simnpo", "beta": 4.5, "gamma": 0.5},
          "retain": {"regularizer": "gd"}, "forget_weight": 0.125, "retain_weight": 1.0}


def _linked_pngs(text: str, base: Path) -> list[Path]:
    return [base / link for link in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)]


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"


# ------------------------------------------------------------------------------------------ gradient weights
def test_gradient_weights_match_hand_computation():
    logp, ref, n = [-12.0, -30.5, -7.25, -55.0], [-11.0, -25.0, -9.0, -40.0], [4, 12, 3, 20]
    beta, beta_s, gamma = 0.3, 2.5, 0.5
    npo_hand, sim_hand = [], []
    for lp, lr, k in zip(logp, ref, n, strict=True):
        pi_b, ref_b = math.exp(beta * lp), math.exp(beta * lr)  # π^β and π_ref^β
        npo_hand.append(2 * pi_b / (pi_b + ref_b))
        sim_hand.append(2 / (1 + math.exp(-(beta_s / k * lp + gamma))) / k)
    assert plots.npo_weights(logp, ref, beta) == pytest.approx(npo_hand, rel=1e-12)
    assert plots.simnpo_weights(logp, n, beta_s, gamma) == pytest.approx(sim_hand, rel=1e-12)
    # the unlearned model being less likely than the reference means weights below 1 (NPO's adaptive weighting)
    assert all(w < 1 for w, lp, lr in zip(npo_hand, logp, ref, strict=True) if lp < lr)

    r = plots.pearson_r(n, sim_hand)
    assert r == pytest.approx(stats.pearsonr(n, sim_hand).statistic, rel=1e-12)
    assert plots.pearson_r(n, [1.0] * 4) is None  # constant weights (epoch 0 of NPO): r undefined


def test_weight_panels_along_a_run(tmp_path):
    entries = read_jsonl(RunDirectory(make_run(tmp_path, "npo", method=NPO, n_epochs=3)).epochs_file)
    assert weights.weight_epochs(entries) == [1, 2, 3]
    assert weights.weight_epochs(entries, (2, -1, 7)) == [2, 3]
    panels = weights.weight_panels(entries, weights.WEIGHT_FORMULAS["npo"], {"beta": 0.3}, wanted=(1, -1))
    assert [p.title for p in panels] == ["NPO $w_\\theta$ (β=0.3), epoch 1", "NPO $w_\\theta$ (β=0.3), epoch 3"]
    hand = [2 / (1 + math.exp(-0.3 * (a - b))) for a, b in zip(_logp(3), _logp(0), strict=True)]
    assert panels[1].weights.tolist() == pytest.approx(hand, rel=1e-12)
    assert panels[1].r == pytest.approx(stats.pearsonr(TOKENS, hand).statistic, rel=1e-12)
    sim = weights.weight_panels(entries, weights.WEIGHT_FORMULAS["simnpo"], {"beta": 2.5, "gamma": 0.0}, wanted=(2,),
                                default=True)
    assert sim[0].title == "SimNPO $w'_\\theta$ (default β=2.5, γ=0), epoch 2"


def test_weight_params_use_the_run_objective_else_the_recipe_else_neutral():
    assert weights.weight_params(NPO)["npo"]["beta"] == (0.3, False)
    assert weights.weight_params(NPO)["simnpo"]["beta"] == (2.5, True)
    sim = weights.weight_params(SIMNPO)["simnpo"]
    assert sim["beta"] == (4.5, False) and sim["gamma"] == (0.5, False)
    assert weights.weight_params({"name": "idk+ap", "forget": {"objective": "idk"}}) == {
        "npo": {"beta": (0.1, True)}, "simnpo": {"beta": (2.5, True), "gamma": (0.0, True)}}
    # a non-SimNPO run's comparison panel uses SimNPO's recipe for the run's own task and forget split
    assert weights.weight_params(NPO, "forget10")["simnpo"]["beta"] == (4.5, True)
    assert weights.weight_params(NPO, "forget05")["simnpo"]["beta"] == (2.5, True)
    assert weights.weight_params(NPO, "forget10", "muse")["simnpo"]["beta"] == (2.5, True)  # no TOFU numbers elsewhere


# ------------------------------------------------------------------------------------------ report.md
def test_report_has_tables_and_valid_plots(tmp_path):
    retain = make_run(tmp_path, "retain", method=None, n_epochs=None, fq=None)
    run = make_run(tmp_path, "npo", method=NPO, reference=RunDirectory(retain).eval_rows_file("forget"))
    path = report.write_report(run)
    assert path == RunDirectory(run).report_file
    text = path.read_text()
    assert "npo+gd — forget: npo (beta=0.3); retain: gd" in text
    assert "| forget | 0.512 [0.480, 0.550] | 0.612 [0.580, 0.650] | 0.712 [0.680, 0.750] | 8 |" in text
    assert "| Model Utility (MU-9) | 0.456 |" in text
    assert "| Forget Quality (FQ, KS p-value vs retain) | 1.23e-02 |" in text
    assert "| retain | 0.550 [0.518, 0.588] | 0.450 [0.418, 0.488] | 0.410 [0.378, 0.448] |" in text  # TE, CS, ES
    assert "| Forget Efficacy (FE) | 0.789 |" in text and "| Model Utility (MU-18) | 0.345 |" in text
    assert "without ES" not in text and "Not drawn" not in text
    # example generations: pipes escaped, newlines as <br>
    assert "| 0 | forget question 0 \\| with a pipe | answer 0<br>second line | npo says 0 | 0.25 |" in text
    pngs = _linked_pngs(text, run)
    assert sorted(p.name for p in pngs) == ["fe_mu_trajectory.png", "fq_mu_epochs.png", "gradient_weights.png",
                                            "truth_ratio_hist.png"]
    for png in pngs:
        _assert_png(png)


def test_report_without_epochs_says_why(tmp_path):
    run = make_run(tmp_path, "simnpo", method=SIMNPO, n_epochs=None)
    text = report.write_report(run).read_text()
    assert text.count(f"Not drawn: {EPOCHS_WHY}.") == 3  # FQ/MU per epoch, FE vs MU, gradient weights
    pngs = _linked_pngs(text, run)
    assert [p.name for p in pngs] == ["truth_ratio_hist.png"]  # drawn without a retain reference, and says so
    assert "retain model's histogram is missing" in text
    _assert_png(pngs[0])
    assert not (run / "plots" / "fq_mu_epochs.png").exists()


def test_es_unavailable_is_labelled_and_never_shown_as_fe(tmp_path, monkeypatch):
    run = report.load_run(make_run(tmp_path, "npo", method=NPO, es=False, fe=0.8161, mu18=0.2718))
    text = "\n".join(tofu_report.closer_look_section(run))
    assert "| forget | — [1] |" in text  # [1]: TE is not measured on the forget set
    assert "| Forget Efficacy (FE) | unavailable [2] |" in text
    assert "| Model Utility (MU-18) | unavailable [2] |" in text
    assert f"[2] ES unavailable: {ES_REASON}" in text
    for value in ("0.816", "0.272"):
        (line,) = [ln for ln in text.splitlines() if value in ln]
        assert "ES unavailable" in line and ("not the full FE" in line or "not MU-18" in line)
    assert text.count("unavailable [2]") == 6  # ES on the 4 sets, FE, MU-18

    # the trajectory figure plots the ES-free values and its axes say so
    assert tofu_report.fe_mu_variant(run.epochs) is True
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or Path(path))
    trajectory = tofu_report._trajectory("npo", run.epochs, True)
    plots.plot_fe_mu_trajectories([trajectory], tmp_path / "x.png", without_es=True)
    ax = figures[0].axes[0]
    assert ax.get_ylabel() == "Forget Efficacy (ES unavailable: R, P, TR, CS)"
    assert ax.get_xlabel() == "Model Utility (ES unavailable: R, P, TR, TE, CS)"
    assert ax.collections[0].get_offsets()[-1].tolist() == pytest.approx([0.2718 - 0.03, 0.8161])


# ------------------------------------------------------------------------------------------ compare
def test_compare_one_row_per_run_with_footnotes(tmp_path):
    retain = make_run(tmp_path, "retain", method=None, n_epochs=None, fq=None)
    ref = RunDirectory(retain).eval_rows_file("forget")
    npo = make_run(tmp_path, "npo", method=NPO, reference=ref, fq=0.0123, mu9=0.456, fe=0.789, mu18=0.345)
    sim = make_run(tmp_path, "simnpo", method=SIMNPO, reference=ref, es=False, fq=0.75, mu9=0.5, fe=0.6, mu18=0.25)
    out = tmp_path / "cmp" / "compare.md"
    text = report.write_comparison([retain, npo, sim], output_path=out, plots_dir=tmp_path / "cmp" / "plots")
    assert out.read_text() == text
    table = next(b for b in text.split("\n\n") if b.startswith("|")).splitlines()  # after any warning
    rows = {ln.split(" | ")[0].lstrip("| "): ln.split(" | ") for ln in table[2:]}
    assert set(rows) == {"retain", "npo+gd", "simnpo+gd"}
    header = table[0].strip("| ").split(" | ")
    col = {name: i for i, name in enumerate(header)}
    assert rows["npo+gd"][col["FQ"]] == "1.23e-02" and rows["npo+gd"][col["MU-9"]] == "0.456"
    assert rows["npo+gd"][col["MU-18"]] == "0.345" and rows["npo+gd"][col["FE"]] == "0.789"
    assert rows["simnpo+gd"][col["FQ"]] == "7.50e-01" and rows["simnpo+gd"][col["MU-9"]] == "0.500"
    es_mark = rows["simnpo+gd"][col["FE"]]
    assert es_mark.startswith("— [") and rows["simnpo+gd"][col["MU-18"]] == es_mark
    assert f"{es_mark[2:]} ES unavailable: {ES_REASON}" in text
    assert rows["simnpo+gd"][col["FE without ES"]] == "0.600" and rows["npo+gd"][col["FE without ES"]] == "—"
    fq_mark = rows["retain"][col["FQ"]]
    assert fq_mark.startswith("— [") and f"{fq_mark[2:]} this run is the retain reference" in text
    assert rows["retain"][col["retain TE"]] == "0.550" and rows["npo+gd"][col["forget ROUGE"]] == "0.512"
    # the multi-run plots exist, are linked relative to the markdown file, and are PNGs
    pngs = _linked_pngs(text, out.parent)
    assert sorted(p.name for p in pngs) == ["fe_mu_trajectories.png", "gradient_weights_npo_vs_simnpo.png"]
    for png in pngs:
        _assert_png(png)
    # the first forget questions with each run's generation side by side
    expected = ("| forget question 0 \\| with a pipe | answer 0<br>second line | retain says 0 | npo says 0 "
                "| simnpo says 0 |")
    assert expected in text
    assert "forget question 3" not in text


def test_compare_names_and_missing_plots(tmp_path):
    a = make_run(tmp_path, "a", method=NPO, n_epochs=None)
    b = make_run(tmp_path, "b", method=NPO, n_epochs=None, fq=None)
    text = report.write_comparison([a, b], plots_dir=tmp_path / "plots", examples=0)
    assert "| npo+gd (a) |" in text and "| npo+gd (b) |" in text
    assert "Not drawn: no run has epochs.jsonl" in text and "missing: npo, simnpo" in text
    assert "no retain reference" in text and "Example generations" not in text
    assert "| x |" in report.write_comparison([a, b], names=["x", "y"], examples=0)
    with pytest.raises(UnlearnError, match="2 names for 1 run"):
        report.write_comparison([a], names=["x", "y"])
    assert not list((tmp_path / "plots").glob("*.png"))


# ------------------------------------------------------------------------------------------ CLI
@pytest.mark.parametrize("command", ["report", "compare"])
def test_cli_rejects_a_directory_that_is_not_a_run(capsys, tmp_path, command):
    run = make_run(tmp_path, "ok", method=NPO, n_epochs=None)
    assert main([command, str(run), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {tmp_path} is not a finished run directory: it has no metrics.json (give the output_dir "
                   "of unlearn finetune, run or eval)\n")
    assert not RunDirectory(run).report_file.exists()  # nothing written when one path is bad


def test_cli_help_and_compare_output(capsys, tmp_path):
    for command in ("report", "compare"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: unlearn" in capsys.readouterr().out
    a = make_run(tmp_path, "a", method=NPO, n_epochs=None)
    out = tmp_path / "table.md"
    assert main(["compare", str(a), "--output", str(out), "--names", "mine", "--examples", "0"]) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text() and "| mine | 1.23e-02 | 0.456 |" in printed


def test_the_memorization_table_appears_for_runs_that_have_the_metrics(tmp_path):
    old = make_run(tmp_path, "old", method=NPO, n_epochs=None)
    assert "## Memorization metrics" not in report.write_report(old).read_text()  # scored before they existed
    new = make_run(tmp_path, "new", method=NPO, n_epochs=None)
    metrics = json.loads(RunDirectory(new).metrics_file.read_text())
    metrics["sets"]["forget"].update({"exact_memorization": 0.75, "extraction_strength": 0.25,
                                      "paraphrase_prob": 0.5, "truth_ratio_knowledge": 0.6})
    metrics["sets"]["forget"]["ci95"]["exact_memorization"] = [0.7, 0.8]
    RunDirectory(new).metrics_file.write_text(json.dumps(metrics))
    text = report.write_report(new).read_text()
    assert "## Memorization metrics (OpenUnlearning)" in text
    assert "| forget | 0.750 [0.700, 0.800] | 0.250 | 0.500 | 0.600 |" in text

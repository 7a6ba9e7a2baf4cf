"""The configuration reference is rendered from the config dataclasses: every key, default and description of
docs/configuration.md matches the code (regenerate with `python -m unlearn.cli.config_docs docs/configuration.md`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unlearn.cli.config_docs import config_classes, format_default, render_document, render_table
from unlearn.config import RunConfig, known_keys
from unlearn.studies.markov.config import MarkovStudyConfig
from unlearn.tasks.multiple_choice.demo import WmdpDemoConfig
from unlearn.tasks.muse.demo import MuseDemoConfig
from unlearn.tasks.tofu.demo import DemoConfig

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"


def test_configuration_md_is_rendered_from_the_code():
    text = DOC.read_text(encoding="utf-8")
    assert render_document(text) == text, "run: python -m unlearn.cli.config_docs docs/configuration.md"


@pytest.mark.parametrize("cls", [RunConfig, DemoConfig, MuseDemoConfig, WmdpDemoConfig, MarkovStudyConfig])
def test_every_key_and_default_is_documented(cls):
    text = DOC.read_text(encoding="utf-8")
    block = text.split(f"<!-- config-table: {cls.__name__} -->", 1)[1].split("<!-- /config-table -->", 1)[0]
    rows = re.findall(r"^\| `([\w.+]+)` \| (.*?) \| (.*) \|$", block, flags=re.M)
    assert [r[0] for r in rows] == known_keys(cls)
    defaults = dict((r[0], r[1]) for r in rows)
    instance = cls()
    for key in known_keys(cls):
        value = instance
        for part in key.split("."):
            value = getattr(value, part)
        assert defaults[key] == format_default(value), key
    assert all(r[2].strip() for r in rows), "every key has a description"


def test_rendered_tables_cover_every_class():
    assert set(config_classes()) == {"RunConfig", "DemoConfig", "MuseDemoConfig", "WmdpDemoConfig", "MarkovStudyConfig",
                                     "AttackConfig", "ContinualConfig", "MemorizationConfig",
                                     "DivergenceConfig", "RefPerturbationConfig", "RealWorldConfig",
                                     "SequentialConfig", "SweepConfig"}
    assert "| `train.lr` | 1e-05 | AdamW learning rate |" in render_table(RunConfig)


def test_src_cites_nothing_outside_the_repository():
    """Formulas are cited from docs/formulas.md or the papers' equations, never from files a reader cannot open."""
    outside = re.compile(r"SPEC|MANIFEST|DESIGN\.md|DEVELOPERS|CLAUDE|\.\./shared")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "src").rglob("*.py")
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if outside.search(line)]
    assert not hits, hits


def test_formulas_doc_anchors_cited_from_src_exist():
    formulas = (ROOT / "docs" / "formulas.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>', formulas))
    cited = {a for p in (ROOT / "src").rglob("*.py")
             for a in re.findall(r"docs/formulas\.md#([\w-]+)", p.read_text(encoding="utf-8"))}
    assert cited and cited <= anchors, sorted(cited - anchors)


def test_the_readme_is_a_door():
    """≤ 12 KB, nothing a newcomer does not have (no ../shared), and every docs page reachable from its index."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 12_000
    assert "../shared" not in readme
    pages = {p.name for p in (root / "docs").glob("*.md")}
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", readme))
    assert pages <= linked, sorted(pages - linked)
    for page in (root / "docs").glob("*.md"):  # no page points users at a folder they do not have
        assert "../shared" not in page.read_text(encoding="utf-8"), page.name

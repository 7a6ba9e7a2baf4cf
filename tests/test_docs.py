"""The configuration reference lists every key the code accepts (and nothing it does not)."""

from __future__ import annotations

import re
from pathlib import Path

from unlearn.config import RunConfig, _known_keys
from unlearn.experiments.demo import DemoConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def _documented(section: str) -> set[str]:
    text = DOC.read_text().split(section, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([\w.]+)` \|", text, flags=re.M))


def test_every_run_key_is_documented():
    assert _documented("## `unlearn finetune`") == set(_known_keys(RunConfig))


def test_every_demo_key_is_documented():
    assert _documented("## `unlearn demo`") == set(_known_keys(DemoConfig))

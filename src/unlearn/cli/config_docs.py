"""docs/configuration.md's key tables, rendered from the config dataclasses (defaults and one-line docs).

``python -m unlearn.cli.config_docs docs/configuration.md`` rewrites every table between the markers
``<!-- config-table: NAME -->`` and ``<!-- /config-table -->``; a test checks the file is up to date.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from pathlib import Path
from typing import Any

from unlearn.config.parsing import field_default, field_doc


def format_default(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_default(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_default(v)}" for k, v in value.items()) + "}"
    return repr(value)


def table_rows(cls: type, prefix: str = "") -> list[str]:
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            rows += table_rows(hints[f.name], f"{prefix}{f.name}.")
        else:
            doc = field_doc(f).replace("|", "\\|")
            rows.append(f"| `{prefix}{f.name}` | {format_default(field_default(f))} | {doc} |")
    return rows


def render_table(cls: type) -> str:
    return "\n".join(["| key | default | meaning |", "|---|---|---|", *table_rows(cls)])


def config_classes() -> dict[str, type]:
    from unlearn.attacks.config import AttackConfig
    from unlearn.config.schema import RunConfig
    from unlearn.scenarios.continual import ContinualConfig
    from unlearn.scenarios.divergence import DivergenceConfig
    from unlearn.scenarios.memorization import MemorizationConfig
    from unlearn.scenarios.real_world import RealWorldConfig
    from unlearn.scenarios.ref_perturbation import RefPerturbationConfig
    from unlearn.scenarios.sequential import SequentialConfig
    from unlearn.studies.markov.config import MarkovStudyConfig
    from unlearn.sweeps.config import SweepConfig
    from unlearn.tasks.multiple_choice.demo import WmdpDemoConfig
    from unlearn.tasks.muse.demo import MuseDemoConfig
    from unlearn.tasks.tofu.demo import DemoConfig

    return {"RunConfig": RunConfig, "DemoConfig": DemoConfig, "MuseDemoConfig": MuseDemoConfig,
            "WmdpDemoConfig": WmdpDemoConfig, "MarkovStudyConfig": MarkovStudyConfig, "AttackConfig": AttackConfig,
            "ContinualConfig": ContinualConfig, "MemorizationConfig": MemorizationConfig,
            "DivergenceConfig": DivergenceConfig, "RefPerturbationConfig": RefPerturbationConfig,
            "RealWorldConfig": RealWorldConfig, "SequentialConfig": SequentialConfig, "SweepConfig": SweepConfig}


MARKER = re.compile(r"(<!-- config-table: (\w+) -->\n)(.*?)(<!-- /config-table -->)", re.S)


def render_document(text: str) -> str:
    """``text`` with every marked table replaced by the one rendered from its class."""
    classes = config_classes()

    def replace(match: re.Match) -> str:
        return f"{match.group(1)}{render_table(classes[match.group(2)])}\n{match.group(4)}"

    return MARKER.sub(replace, text)


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "docs/configuration.md")
    path.write_text(render_document(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"rewrote the config tables of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

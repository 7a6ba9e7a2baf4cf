"""Controlled studies that reproduce a paper's analysis end to end (``unlearn study NAME``), in a registry like the
methods', tasks', attacks' and scenarios'."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unlearn.registry import Registry


@dataclass(frozen=True)
class Study:
    """A study: its name, a one-line summary, and ``load()`` giving ``(config_from_args, run, summarize)`` — the
    settings from ``unlearn study NAME``'s arguments, the runner (settings → results) and the results as text —
    so that a study's module is imported only when it runs."""

    name: str
    summary: str
    load: Callable[[], tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[[Any], str]]]


def _lazy(module: str) -> Callable[[], tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[[Any], str]]]:
    def load() -> tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[[Any], str]]:
        loaded = importlib.import_module(f"unlearn.studies.{module}")
        return loaded.config_from_args, loaded.run_study, loaded.format_summary

    return load


def _builtin() -> None:
    STUDIES.register("markov", Study("markov", "the SimNPO paper's mixture of Markov chains (§5, App. H): NPO vs "
                                               "SimNPO on short and long forget sequences", _lazy("markov")),
                     origin="unlearn.studies.markov")


STUDIES: Registry[Study] = Registry("study", loader=_builtin, hint="`unlearn study NAME`")

"""Refusal ("I don't know") templates for targeted unlearning (IDK, DPO, AP).

A benchmark directory's ``idontknow.jsonl`` is used when present (docs/formulas.md#idk). Otherwise the toolkit uses its
own 100 templates below, composed from a few openings and reasons so they read naturally and are fixed
across versions (changing them changes every targeted result, so they are data, not code to tune).
"""

from __future__ import annotations

_OPENINGS = (
    "I'm not sure",
    "I don't know",
    "I have no idea",
    "I can't say",
    "I'm afraid I can't tell you",
    "Sorry, I don't know",
    "I'm unable to answer that",
    "I really can't say",
    "I have no information",
    "Unfortunately, I don't know",
)
_ENDINGS = (
    ".",
    ", I'm afraid.",
    "; that is beyond what I know.",
    "; I don't have that information.",
    "; I can't help with that question.",
    "; it's not something I know about.",
    "; my knowledge doesn't cover it.",
    "; you may want to check another source.",
    "; I have no record of that.",
    "; that's outside my knowledge.",
)


def builtin_idk_templates() -> list[str]:
    """The 100 built-in refusal sentences (10 openings × 10 endings), in a fixed order."""
    return [f"{opening}{ending}" for opening in _OPENINGS for ending in _ENDINGS]

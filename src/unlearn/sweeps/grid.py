"""A sweep's grid, written in the one override syntax (docs/sweeps.md):

- ``key=v1,v2,…`` is an axis: every value is one ``key=value`` override (a list value is written in brackets,
  ``data.train_splits=[full,world_facts],[full]``); ``key=v`` with one value holds for every run;
- ``METHOD:key=v1,v2`` is an axis of that method's runs only (β means different things for NPO and SimNPO:
  ``npo+gd:forget.beta=0.05,0.1 simnpo+gd:forget.beta=2.5,3.5``);
- the runs are the product of the common axes with each method's own axes, methods in the order given.

Every run's configuration is built and checked (unknown keys, wrong types, unknown methods) before any run starts.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig, load_config
from unlearn.errors import ConfigError

METHOD_KEYS = ("method", "method.name")


def split_values(raw: str) -> list[str]:
    """``"1e-5,2e-5"`` → ``["1e-5", "2e-5"]``; commas inside brackets or quotes do not split
    (``"[a,b],[c]"`` → ``["[a,b]", "[c]"]``)."""
    out, depth, quote, current = [], 0, "", []
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    out.append("".join(current).strip())
    return out


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[str, ...]
    method: str | None = None  # the method whose runs it applies to (None: every run)


@dataclass(frozen=True)
class Grid:
    methods: tuple[str | None, ...]  # None: the base config's method
    axes: tuple[Axis, ...]

    def method_axes(self, method: str | None) -> list[Axis]:
        """The axes of ``method``'s runs: its own, and the common ones it does not replace with its own key."""
        own = {a.key for a in self.axes if a.method is not None and a.method == method}
        return [a for a in self.axes if a.method == method or (a.method is None and a.key not in own)]


@dataclass(frozen=True)
class GridRun:
    """One run of the sweep: its name, the overrides that distinguish it, and its checked configuration."""

    name: str
    method: str
    overrides: tuple[str, ...]
    config: RunConfig

    @property
    def settings(self) -> dict[str, str]:
        return dict(o.split("=", 1) for o in self.overrides)


AXIS = re.compile(r"^(?:(?P<method>[\w.+-]+):)?(?P<key>[\w.+-]+)=(?P<values>.*)$", re.S)


def parse_grid(items: Sequence[str]) -> Grid:
    """The axes of ``items`` (the sweep's ``key=value…`` arguments); an empty grid is an error."""
    if not items:
        raise ConfigError("the grid is empty: give at least one axis, e.g. train.lr=1e-5,2e-5 or "
                          "method=npo+gd,simnpo+gd")
    methods: tuple[str | None, ...] = (None,)
    axes: list[Axis] = []
    seen: set[tuple[str | None, str]] = set()
    for item in items:
        match = AXIS.match(item.strip())
        if match is None:
            raise ConfigError(f"grid entry {item!r} must look like key=v1,v2 or METHOD:key=v1,v2")
        key, method = match["key"], match["method"]
        values = split_values(match["values"])
        if any(not v for v in values):
            raise ConfigError(f"grid entry {item!r} has an empty value")
        if (method, key) in seen:
            raise ConfigError(f"grid key {key!r}{f' (of {method})' if method else ''} is given twice")
        seen.add((method, key))
        if key in METHOD_KEYS:
            if method is not None:
                raise ConfigError(f"grid entry {item!r}: the method axis cannot belong to one method")
            if len(set(values)) != len(values):
                raise ConfigError(f"grid entry {item!r} names a method twice")
            methods = tuple(values)
            continue
        axes.append(Axis(key, tuple(values), method))
    known = set(methods)
    for axis in axes:
        if axis.method is not None and axis.method not in known:
            raise ConfigError(f"grid entry {axis.method}:{axis.key}=…: {axis.method} is not a method of the sweep "
                              f"({', '.join(m for m in methods if m) or 'give method=… first'})")
    return Grid(methods, tuple(axes))


def run_name(method: str, overrides: Sequence[str]) -> str:
    """A readable, unique directory name: the method and the swept values, with a short hash of them."""
    parts = [method.replace("+", "_")] + [o.replace("/", "_").replace(" ", "") for o in overrides]
    readable = "-".join(parts)
    digest = hashlib.sha1("\n".join([method, *overrides]).encode()).hexdigest()[:6]
    return f"{readable[:80]}-{digest}"


def expand(grid: Grid, base: Mapping[str, Any], fixed: Sequence[str], out: Path) -> list[GridRun]:
    """Every run of the grid, its configuration built from ``base`` (the base config file's values), the ``fixed``
    overrides and its own; each under ``out/runs/<name>``."""
    runs = []
    for method in grid.methods:
        axes = grid.method_axes(method)
        single = [a for a in axes if len(a.values) == 1]
        swept = [a for a in axes if len(a.values) > 1]
        for combo in itertools.product(*(a.values for a in swept)):
            own = [f"{a.key}={v}" for a, v in zip(swept, combo, strict=True)]
            overrides = [*fixed, *(f"method={method}",) * (method is not None), *(f"{a.key}={a.values[0]}"
                                                                                  for a in single), *own]
            try:
                cfg = load_config(RunConfig, None, overrides, base=base)
            except ConfigError as err:
                where = f" (run {method or 'base method'}: {', '.join(own) or 'no swept values'})"
                raise ConfigError(f"grid: {err}{where}") from None
            name = run_name(cfg.method.name, own)
            cfg.output_dir = str(out / "runs" / name)
            runs.append(GridRun(name, cfg.method.name, tuple(own), cfg))
    if not any(len(a.values) > 1 for a in grid.axes) and len(grid.methods) <= 1:
        raise ConfigError("the grid is empty: every axis has one value (give two or more values to sweep, "
                          "e.g. train.lr=1e-5,2e-5)")
    return runs

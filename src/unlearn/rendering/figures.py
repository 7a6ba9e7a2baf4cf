"""A report section around a figure: the image and its caption, or one line saying why it was not drawn."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

from unlearn.runs import RunDirectory

PlotResult = tuple[Path, str] | str
"""What a figure builder returns: ``(png, caption)``, or the reason it drew nothing."""

EPOCHS_WHY = f"per-epoch plots need train.eval_every_epoch=true (this run has no {RunDirectory.EPOCHS})"


def relative_link(path: Path, start: Path | None) -> str:
    """``path`` relative to ``start`` (as markdown links it), absolute when there is no ``start``."""
    if start is None:
        return path.resolve().as_posix()
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()


def figure_section(heading: str, make: Callable[[], PlotResult], report_dir: Path | None) -> list[str]:
    """A ``###`` section with the figure ``make`` draws, or one line saying why there is none."""
    try:
        result = make()
    except Exception as err:  # a figure must never cost the rest of the report (runs call this at the end)
        warnings.warn(f"{heading}: {type(err).__name__}: {err}", stacklevel=2)
        result = f"drawing failed ({type(err).__name__}: {err})"
    lines = [f"### {heading}", ""]
    if isinstance(result, str):
        lines.append(f"Not drawn: {result}.")
    else:
        path, caption = result
        lines += [f"![{heading}]({relative_link(path, report_dir)})", "", caption]
    return [*lines, ""]

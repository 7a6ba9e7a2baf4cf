"""A smaller TOFU with its own author-level forget/retain split, for runs that must fit a CPU.

``make_subset(src, out, n_authors=20, forget_authors=2)`` keeps the first ``n_authors`` fictitious authors of a
TOFU release (20 consecutive rows each) and makes the LAST ``forget_authors`` of them the forget
split, TOFU's suffix convention. Every file is written in TOFU's layout under TOFU's names, so the rest of the
toolkit treats the subset like the real thing:

- ``full`` = rows of the kept authors; ``forgetXX`` / ``retainYY`` with XX = the forget share in percent;
- ``forgetXX_perturbed`` and ``retain_perturbed`` come from TOFU's ``retain_perturbed`` (= ``full[0:400]`` with
  paraphrased and perturbed answers), so they exist for the first 20 authors only;
- ``real_authors*``, ``world_facts*`` and ``idontknow.jsonl`` are copied as they are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from unlearn.data.records import record_to_dict
from unlearn.errors import DataError
from unlearn.io import check_output_dir, write_jsonl, write_text
from unlearn.tasks.tofu.data import EVAL_FIELDS, TofuData

ROWS_PER_AUTHOR = 20
SUBSET_MARKER = "TOFU subset made by `unlearn tofu-subset`"
COPIED = ("real_authors", "real_authors_perturbed", "world_facts", "world_facts_perturbed")


def make_subset(src: str | Path, out: str | Path, n_authors: int = 20, forget_authors: int = 2) -> tuple[Path, str]:
    """Write the subset; return (directory, forget split name)."""
    if not 0 < forget_authors < n_authors:
        raise DataError(f"forget_authors must be between 1 and n_authors - 1, got {forget_authors} of {n_authors}")
    data = TofuData(src)
    full = data.split("full")
    perturbed = data.split("retain_perturbed", EVAL_FIELDS)
    n_rows = n_authors * ROWS_PER_AUTHOR
    if n_rows > len(perturbed):
        raise DataError(f"{src}: retain_perturbed covers {len(perturbed) // ROWS_PER_AUTHOR} authors; "
                        f"a subset of {n_authors} authors needs paraphrases for all of them")
    for i, (a, b) in enumerate(zip(full[:n_rows], perturbed[:n_rows], strict=True)):
        if (a.question, a.answer) != (b.question, b.answer):
            raise DataError(f"{src}: full row {i} and retain_perturbed row {i} differ; not the TOFU release layout")
    percent = round(100 * forget_authors / n_authors)
    forget_name, retain_name = f"forget{percent:02d}", f"retain{100 - percent:02d}"
    cut = (n_authors - forget_authors) * ROWS_PER_AUTHOR
    out = check_output_dir(out, SUBSET_MARKER)
    out.mkdir(parents=True, exist_ok=True)
    plain = [{"question": r.question, "answer": r.answer} for r in full[:n_rows]]
    write_jsonl(out / "full.json", plain)
    write_jsonl(out / f"{forget_name}.json", plain[cut:])
    write_jsonl(out / f"{retain_name}.json", plain[:cut])
    write_jsonl(out / f"{forget_name}_perturbed.json", [record_to_dict(r) for r in perturbed[cut:n_rows]])
    write_jsonl(out / "retain_perturbed.json", [record_to_dict(r) for r in perturbed[:cut]])
    for name in COPIED:
        source = Path(src) / f"{name}.json"
        if not source.is_file():
            raise DataError(f"{source}: needed for the subset's Model Utility sets")
        shutil.copyfile(source, out / f"{name}.json")
    idk = Path(src) / "idontknow.jsonl"
    if idk.is_file():
        shutil.copyfile(idk, out / "idontknow.jsonl")
    write_text(out / "README.md", (
        f"{SUBSET_MARKER}: the first {n_authors} authors of {src}, forget split "
        f"{forget_name} = the last {forget_authors} of them ({len(plain) - cut} rows), {retain_name} = the other "
        f"{cut} rows. Not the TOFU benchmark itself: numbers on it are not comparable to published TOFU numbers.\n"))
    return out, forget_name

"""Rebuild the vendored fixtures under tests/data/ from a full copy of the benchmark data (the ``shared/data``
folder beside the repository, or the directory given as the first argument). The fixtures are committed, so the
suite never needs that copy; this script documents, and reproduces, exactly which rows they hold.

    python tests/data/make_fixtures.py [SHARED_DATA_DIR]

Every row is copied unchanged except where this file says it is cut (long texts, to keep the fixtures small).
Sources and licenses: tests/data/README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = 10  # rows per evaluation file and eval-log section
TEXT_CHARS = 2000  # long texts (MUSE articles, raw corpora) are cut here


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_lines(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def tofu(src: Path, out: Path) -> None:
    """Authors 1–3 and 199–200 of TOFU's ``full`` (100 rows); ``forget01`` (the last two authors, as released);
    ``retain_perturbed``'s first two authors (40 rows: ``make_subset`` needs paraphrases for every kept author);
    the first 10 rows of ``forget01_perturbed``, ``real_authors*`` and ``world_facts*``; ``idontknow.jsonl`` whole;
    and ``array_layout.json``, the first 10 rows of ``forget01`` rewritten as one JSON array (the layout other
    sources of TOFU ship, e.g. the holdout splits)."""
    full = _lines(src / "full.json")
    _write_lines(out / "full.json", full[:60] + full[-40:])
    _write_lines(out / "forget01.json", _lines(src / "forget01.json"))
    _write_lines(out / "retain_perturbed.json", _lines(src / "retain_perturbed.json")[:40])
    for name in ("forget01_perturbed", "real_authors", "real_authors_perturbed", "world_facts",
                 "world_facts_perturbed"):
        _write_lines(out / f"{name}.json", _lines(src / f"{name}.json")[:ROWS])
    _write_json(out / "array_layout.json", _lines(src / "forget01.json")[:ROWS])
    (out / "idontknow.jsonl").write_bytes((src / "idontknow.jsonl").read_bytes())


def tofu_logs(src: Path, out: Path) -> None:
    """The TOFU authors' published eval logs, every section cut to its first rows: Llama-2 and Phi retain95 (10
    rows each: the same forget rows, two models) and Llama-2 retain90 (12 forget rows, so a different forget set)."""
    for run, rows in (("ft_epoch5_lr1e-05_llama2-7b_retain95_wd0.01", ROWS),
                      ("ft_epoch5_lr2e-05_phi_retain95_wd0.01", ROWS),
                      ("ft_epoch5_lr1e-05_llama2-7b_retain90_wd0.01", ROWS + 2)):
        log = json.loads((src / run / "eval_log_aggregated.json").read_text(encoding="utf-8"))
        cut = {section: {field: {k: v for k, v in values.items() if int(k) < rows}
                         for field, values in fields.items()} for section, fields in log.items()}
        _write_json(out / run / "eval_log_aggregated.json", cut)


def wmdp(src: Path, out: Path) -> None:
    """The first 5 questions of each WMDP domain file (JSON array, as released)."""
    for domain in ("bio", "chem", "cyber"):
        rows = json.loads((src / f"{domain}_questions.json").read_text(encoding="utf-8"))
        _write_json(out / f"{domain}_questions.json", rows[:5])


def muse_news(src: Path, out: Path) -> None:
    """MUSE-News in its layout: the first 10 KnowMem QA pairs (forget, retain2) with their few-shot files, the
    first 5 VerbMem rows, the first 4 PrivLeak texts of forget / holdout / retain2, the raw forget corpus and the
    first sequential request — every text cut at 2,000 characters."""
    for name in ("forget_qa", "retain2_qa"):
        _write_json(out / "knowmem" / f"{name}.json",
                    json.loads((src / "knowmem" / f"{name}.json").read_text(encoding="utf-8"))[:ROWS])
        icl = src / "knowmem" / f"{name}_icl.json"
        _write_json(out / "knowmem" / icl.name, json.loads(icl.read_text(encoding="utf-8")))
    verbmem = json.loads((src / "verbmem" / "forget.json").read_text(encoding="utf-8"))[:5]
    _write_json(out / "verbmem" / "forget.json",
                [{"prompt": r["prompt"][:TEXT_CHARS], "gt": r["gt"][:TEXT_CHARS]} for r in verbmem])
    for name in ("forget", "holdout", "retain2"):
        texts = json.loads((src / "privleak" / f"{name}.json").read_text(encoding="utf-8"))[:4]
        _write_json(out / "privleak" / f"{name}.json", [t[:TEXT_CHARS] for t in texts])
    for name in ("raw/forget.txt", "sust/forget_1.txt"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text((src / name).read_text(encoding="utf-8")[:TEXT_CHARS], encoding="utf-8")


def main(argv: list[str]) -> int:
    shared = Path(argv[0]) if argv else HERE.parents[2] / "shared" / "data"
    tofu(shared / "tofu", HERE / "tofu")
    tofu_logs(shared / "tofu" / "reference_eval", HERE / "tofu" / "reference_eval")
    wmdp(shared / "wmdp", HERE / "wmdp")
    muse_news(shared / "muse" / "news", HERE / "muse_news")
    print(f"fixtures written under {HERE} from {shared}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The architecture as a rule: import-linter's layer contract (pyproject.toml) holds, and docs/architecture.md's
file tree lists exactly the modules that exist."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "unlearn"


def test_the_layer_contract_holds():
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    done = subprocess.run([lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def _tree_files(text: str) -> dict[str, str]:
    """``{path relative to src/unlearn: description}`` from the tree block that starts with ``src/unlearn/``."""
    block = text.split("```\nsrc/unlearn/\n", 1)[1].split("```", 1)[0]
    files, stack = {}, []
    for line in block.splitlines():
        match = re.match(r"^( *)(\S+)(?:\s+(.*))?$", line)
        assert match, f"unparsable tree line: {line!r}"
        depth = len(match.group(1)) // 2 - 1
        name, description = match.group(2), (match.group(3) or "").strip()
        del stack[depth:]
        if name.endswith("/"):
            stack.append(name.rstrip("/"))
        else:
            path = "/".join([*stack, name])
            assert description, f"{path}: no description in docs/architecture.md"
            assert path not in files, f"{path} is listed twice"
            files[path] = description
    return files


def _modules_with_code() -> set[str]:
    """Every module under src/unlearn that holds more than a docstring."""
    out = set()
    for path in SRC.rglob("*.py"):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        if any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in body):
            out.add(path.relative_to(SRC).as_posix())
    return out


def test_the_architecture_tree_matches_the_code():
    listed = _tree_files((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    missing = sorted(_modules_with_code() - set(listed))
    gone = sorted(p for p in listed if not (SRC / p).is_file())
    assert not missing, f"modules missing from docs/architecture.md's tree: {missing}"
    assert not gone, f"docs/architecture.md lists files that do not exist: {gone}"


def test_every_benchmark_folder_says_what_it_is():
    for folder in sorted(p for p in (SRC / "tasks").iterdir() if p.is_dir() and p.name != "__pycache__"):
        readme = folder / "README.md"
        assert readme.is_file(), f"{folder.relative_to(ROOT)} has no README.md"
        text = readme.read_text(encoding="utf-8")
        for module in sorted(p.name for p in folder.glob("*.py") if p.name != "__init__.py"):
            assert f"`{module}`" in text, f"{readme.relative_to(ROOT)} does not say what {module} holds"

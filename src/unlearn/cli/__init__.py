"""The ``unlearn`` command: one module per subcommand under :mod:`unlearn.cli.commands`, assembled here.

Every command that runs something takes ``--config FILE`` (YAML) and ``key=value`` overrides (one syntax
everywhere, see :mod:`unlearn.config.parsing`); input errors are reported as one line, before any compute, with exit
status 2. Plugins (``--plugin``, ``plugins=[…]``) load before the command line is parsed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from unlearn.cli.commands import COMMANDS
from unlearn.errors import UnlearnError


def commands() -> dict[str, ModuleType]:
    """``NAME`` → the command's module, in ``unlearn --help`` order."""
    modules = [importlib.import_module(f"unlearn.cli.commands.{name}") for name in COMMANDS]
    return {m.NAME: m for m in modules}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlearn",
        epilog="Plugins (docs/extending.md): --plugin MODULE_OR_FILE (repeatable, anywhere on the line) or "
               "plugins=[a,b] load code that registers methods, tasks, attacks or scenarios; installed plugins "
               "(entry points) load by themselves.",
        description="Machine unlearning for LLMs: fine-tune, unlearn (forget objective × regularizer), evaluate.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in commands().items():
        example = getattr(module, "EXAMPLE", None)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           epilog=f"example:\n  {example}" if example else None,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Like ``parse_args``, but ``key=value`` overrides may also come after flags (``study markov --all seeds=5``)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [x for x in extra if "=" not in x or x.startswith("-")]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def split_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the plugin specs of ``--plugin X`` / ``--plugin=X`` / ``plugins=[a,b]``, the other arguments): plugins load
    before the command line is parsed, so that their names are known everywhere."""
    specs, rest, i = [], [], 0
    while i < len(argv):
        item = argv[i]
        if item == "--plugin":
            if i + 1 >= len(argv):
                raise UnlearnError("--plugin needs a module name or a .py file")
            specs.append(argv[i + 1])
            i += 2
            continue
        if item.startswith("--plugin="):
            specs.append(item.partition("=")[2])
        elif item.partition("=")[0].strip() == "plugins" and "=" in item:
            value = item.partition("=")[2].strip()
            value = value[1:-1] if value.startswith("[") and value.endswith("]") else value
            specs += [v.strip().strip("'\"") for v in value.split(",") if v.strip()]
        else:
            rest.append(item)
        i += 1
    return specs, rest


def main(argv: list[str] | None = None) -> int:
    from unlearn.plugins import load_plugins

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        specs, argv = split_plugins(argv)
        load_plugins(specs)
    except UnlearnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args = parse_args(argv)
    try:
        return args._run(args)
    except UnlearnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue from the last checkpoint", file=sys.stderr)
        return 130
    finally:
        _end_process_group()


def _end_process_group() -> None:
    """Under `accelerate launch`, leave the process group once the command is done (torch warns otherwise)."""
    if "torch.distributed" not in sys.modules:  # nothing launched one (and no need to import torch for it)
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

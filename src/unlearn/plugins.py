"""Plugins: code outside the package that registers methods, tasks, attacks or scenarios (docs/extending.md).

A plugin is a Python module that calls the ``register_*`` functions of :mod:`unlearn.extend` when it is imported.
It is found in three ways, all loaded before a command reads any registry:

- **entry points** of an installed distribution, in the groups :data:`ENTRY_POINT_GROUPS`
  (``[project.entry-points."unlearn.methods"] mine = "my_package.unlearning"``); the value names a module, or a
  function called with no arguments;
- ``--plugin MODULE_OR_FILE`` (repeatable) or ``plugins=[…]`` on the command line: a dotted module name or a
  ``.py`` file;
- the environment variable :data:`ENV` (``os.pathsep``-separated), which the CLI sets from the command line so that
  the processes a sweep starts load the same plugins.

A plugin that fails to import, or registers a name already taken, is one error line naming it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from unlearn.errors import ConfigError, UnlearnError

ENTRY_POINT_GROUPS = ("unlearn.methods", "unlearn.tasks", "unlearn.attacks", "unlearn.scenarios")
ENV = "UNLEARN_PLUGINS"

_loaded: dict[str, ModuleType] = {}
_entry_points_done = False


class PluginError(ConfigError):
    """A plugin could not be loaded: it does not import, or what it registers is refused."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def _import(spec: str) -> ModuleType:
    """A dotted module name, or a ``.py`` file (imported under the name ``unlearn_plugin_<stem>``)."""
    path = Path(spec).expanduser()
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise PluginError(f"plugin {spec}: no such file")
        name = f"unlearn_plugin_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise PluginError(f"plugin {spec}: not a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def load_plugin(spec: str) -> None:
    """Import one plugin (once per process), turning every failure into one :class:`PluginError` line."""
    spec = spec.strip()
    if not spec or spec in _loaded:
        return
    try:
        _loaded[spec] = _import(spec)
    except PluginError:
        raise
    except UnlearnError as err:  # a name registered twice, a wrong entry
        raise PluginError(f"plugin {spec}: {err}") from None
    except Exception as err:  # any import-time failure of someone else's code
        raise PluginError(f"plugin {spec} failed to import ({_first_line(err)})") from None


def load_entry_points() -> None:
    """Every installed distribution's plugins (once per process)."""
    global _entry_points_done
    if _entry_points_done:
        return
    _entry_points_done = True
    for group in ENTRY_POINT_GROUPS:
        for ep in importlib.metadata.entry_points(group=group):
            where = f"entry point {ep.name!r} of group {group}" + (f" ({ep.dist.name})" if ep.dist else "")
            try:
                loaded = ep.load()
                if callable(loaded) and not isinstance(loaded, ModuleType | type):
                    loaded()
            except UnlearnError as err:
                raise PluginError(f"plugin {where}: {err}") from None
            except Exception as err:
                raise PluginError(f"plugin {where} failed to import ({_first_line(err)})") from None


def env_plugins() -> list[str]:
    return [s for s in os.environ.get(ENV, "").split(os.pathsep) if s.strip()]


def load_plugins(specs: Sequence[str] = ()) -> None:
    """Entry points, then :data:`ENV`, then ``specs``; the specs are added to :data:`ENV` for child processes."""
    load_entry_points()
    given = [s for s in specs if s.strip()]
    for spec in [*env_plugins(), *given]:
        load_plugin(spec)
    if given:
        known = env_plugins()
        os.environ[ENV] = os.pathsep.join([*known, *(s for s in given if s not in known)])

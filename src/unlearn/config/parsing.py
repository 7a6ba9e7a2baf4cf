"""The one configuration system: dataclasses with documented defaults, YAML files and ``key=value`` overrides.

Precedence: dataclass defaults ← ``base`` values (a pipeline's own recipe) ← YAML file (``--config``) ← ``key=value``
overrides. Keys are dotted paths (``train.lr=1e-4``); values are parsed as YAML scalars, and ``a,b`` is a list where
the field is a list. A section that is a mapping (``forget``, ``method_overrides``) takes any dotted path below it,
so per-method overrides use the same syntax as everything else: ``method_overrides.npo+gd.forget.beta=0.5``.

Every field is declared with :func:`setting` (default + one-line documentation); ``docs/configuration.md`` is
rendered from those declarations (:mod:`unlearn.cli.config_docs`) and a test keeps the two identical. Field checks live
in each dataclass's ``__post_init__`` and name the key, so a bad value is an error before any compute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import types
import typing
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import MISSING, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from unlearn.errors import ConfigError

T = TypeVar("T")


def setting(default: Any = MISSING, doc: str = "", *, factory: Callable[[], Any] | None = None) -> Any:
    """A config field with its default and its one-line documentation (shown in docs/configuration.md)."""
    metadata = {"doc": doc}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def field_doc(f: dataclasses.Field) -> str:
    return str(f.metadata.get("doc", ""))


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def yaml_problem(err: BaseException) -> str:
    """A YAML parser error in one line: what is wrong and where (PyYAML's own message spans four, with a caret)."""
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if problem:
        context = getattr(err, "context", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        hint = "; tags that build Python objects are never read" if "python/" in problem else ""
        return f"{context + ': ' if context else ''}{problem}{where}{hint}"
    return " ".join(str(err).split())


def flat_keys(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys (``{"train": {"lr": 1}}`` → ``{"train.lr": 1}``); an empty mapping is a
    value of its own, so ``forget: {}`` and no ``forget`` key differ."""
    if isinstance(node, dict) and node:
        return {k: v for key, value in node.items() for k, v in flat_keys(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


# ------------------------------------------------------------------------------------------ checks
def check(ok: bool, key: str, requirement: str, value: Any) -> None:
    """Raise ``ConfigError("KEY must REQUIREMENT, got VALUE")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} must {requirement}, got {value!r}")


def check_choice(value: Any, choices: Sequence[Any], key: str) -> None:
    check(value in choices, key, f"be one of {', '.join(map(str, choices))}", value)


# ------------------------------------------------------------------------------------------ types
def _unwrap_optional(tp: Any) -> Any:
    """``X | None`` → ``X`` (other types unchanged)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_mapping_type(tp: Any) -> bool:
    tp = _unwrap_optional(tp)
    return typing.get_origin(tp) is dict or tp is dict


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if tp is Any:
        return value
    if origin in (list, tuple):
        item = typing.get_args(tp)[0] if typing.get_args(tp) else Any
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if _is_mapping_type(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        args = typing.get_args(tp)
        key_tp, value_tp = args if args else (Any, Any)
        return {_coerce(k, key_tp, f"{key} key"): _coerce(v, value_tp, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of keys, got {value!r}")
        return build(tp, value, f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, str):  # mapping keys from the command line arrive as text ("betas.1.npo=0.3")
            with contextlib.suppress(yaml.YAMLError):
                value = yaml.safe_load(value)
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is None:
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(number):  # YAML reads .inf and .nan; no setting means them
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return str(value)
    return value


def known_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of a config dataclass (sections expanded, mapping sections as one key)."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys += known_keys(tp, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _renamed(cls: type) -> Mapping[str, str]:
    return getattr(cls, "RENAMED", {})


def build(cls: type[T], values: Mapping[str, Any], prefix: str = "") -> T:
    """Instantiate ``cls`` from a (nested) mapping; unknown keys suggest the closest known one."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values = dict(values)
    for old, new in _renamed(cls).items():
        if old in values:
            warnings.warn(f"config key '{prefix}{old}' is now '{prefix}{new}'; the old name will stop working",
                          FutureWarning, stacklevel=2)
            values.setdefault(new, values.pop(old))
    unknown = sorted(set(values) - names)
    if unknown:
        key = f"{prefix}{unknown[0]}"
        known = known_keys(cls, prefix)
        # the same name in another section first (seed → train.seed), then the closest spelling
        same_leaf = [k for k in known if k.rsplit(".", 1)[-1] == unknown[0]]
        close = same_leaf or difflib.get_close_matches(key, known, n=1) or difflib.get_close_matches(
            unknown[0], [k.rsplit(".", 1)[-1] for k in known], n=1)
        if close and "." not in close[0] and close[0] not in known:
            close = [k for k in known if k.rsplit(".", 1)[-1] == close[0]]
        hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
        raise ConfigError(f"unknown config key '{key}'{hint}")
    kwargs = {f.name: _coerce(values[f.name], hints[f.name], f"{prefix}{f.name}")
              for f in dataclasses.fields(cls) if f.name in values}
    return cls(**kwargs)


def _field_hint(cls: Any, name: str) -> Any:
    if not dataclasses.is_dataclass(cls):
        return None
    name = _renamed(cls).get(name, name)
    return typing.get_type_hints(cls).get(name)


def _value_type(tp: Any) -> Any:
    """The type of the values below a mapping field (``Any`` when it is not declared)."""
    args = typing.get_args(_unwrap_optional(tp))
    return args[1] if len(args) == 2 else Any


def _leaf_type(cls: type, parts: Sequence[str]) -> Any:
    """The declared type at a dotted path, or None where the path is unknown or untyped."""
    tp: Any = cls
    for part in parts:
        if dataclasses.is_dataclass(tp):
            tp = _field_hint(tp, part)
        elif _is_mapping_type(tp):
            tp = _value_type(tp)
        else:
            return None
        if tp is None:
            return None
    return tp


def _set_dotted(tree: dict[str, Any], key: str, value: Any, cls: type) -> None:
    parts = key.split(".")
    node = tree
    tp: Any = cls
    for i, part in enumerate(parts[:-1]):
        if dataclasses.is_dataclass(tp):
            hint = _field_hint(tp, part)
            if hint is None:
                build(tp, {part: None}, ".".join(parts[:i]) + "." if i else "")  # raises: unknown key
            if not (dataclasses.is_dataclass(hint) or _is_mapping_type(hint) or hint is Any):
                raise ConfigError(f"config key '{key}': '{'.'.join(parts[:i + 1])}' is not a section")
            tp = hint
        elif _is_mapping_type(tp):
            tp = _value_type(tp)
        elif tp is not Any:
            raise ConfigError(f"config key '{key}': '{'.'.join(parts[:i + 1])}' is not a section")
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key '{key}': '{'.'.join(parts[:i + 1])}' was given a value, not keys")
        node = child
    node[parts[-1]] = value


def _parse_value(raw: str, tp: Any) -> Any:
    """A YAML scalar, except that a string field keeps its text literally (a path like ``001`` stays a string)."""
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw
    wants_text = tp is str or (typing.get_origin(tp) in (typing.Union, types.UnionType)
                               and str in typing.get_args(tp) and not any(
                                   a in (int, float, bool) for a in typing.get_args(tp)))
    if wants_text and value is not None and not isinstance(value, (str, list, dict)):
        return raw.strip()
    return value


def parse_overrides(items: Sequence[str], cls: type) -> dict[str, Any]:
    """``["train.lr=1e-4", "method=npo+gd"]`` → nested dict; ``cls.SHORTHANDS`` expands short keys."""
    shorthands: Mapping[str, str] = getattr(cls, "SHORTHANDS", {})
    tree: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.lr=1e-4)")
        key, raw = item.split("=", 1)
        key = shorthands.get(key.strip(), key.strip())
        if not key:
            raise ConfigError(f"override {item!r} has no key")
        _set_dotted(tree, key, _parse_value(raw, _leaf_type(cls, key.split("."))), cls)
    return tree


def partition_overrides(items: Sequence[str], keys: Collection[str]) -> tuple[list[str], list[str]]:
    """(overrides whose first key segment is in ``keys``, the others): how a command that takes two configs (an
    attack's or a scenario's settings beside the run's) splits one ``key=value`` list."""
    mine, rest = [], []
    for item in items:
        key = item.partition("=")[0].strip()
        (mine if key.split(".")[0] in keys else rest).append(item)
    return mine, rest


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: ``extra`` wins; mappings merge key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config file as UTF-8") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({yaml_problem(err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    base: Mapping[str, Any] | None = None,
) -> T:
    """Defaults ← ``base`` ← YAML file ← overrides; unknown keys and wrong types are ConfigErrors."""
    values = dict(base or {})
    if path is not None:
        values = merge(values, read_yaml(path))
    values = merge(values, parse_overrides(overrides, cls))
    return build(cls, values)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(_plain(to_dict(cfg)), sort_keys=False, allow_unicode=True)


def _plain(obj: Any) -> Any:
    """Tuples as lists, so YAML stays plain."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj

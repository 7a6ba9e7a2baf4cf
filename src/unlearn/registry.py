"""One registry type for everything the toolkit looks up by name: forget objectives, regularizers, weight-edit
methods, evaluation tasks, attacks, scenarios.

A :class:`Registry` maps a name (and its aliases) to an entry; an unknown name is one :class:`ConfigError` line
with the closest known names; a name registered twice is an error naming both registrations, so a plugin cannot
silently replace a built-in. Built-ins register themselves when their module is imported (``loader``); plugins do
the same through :func:`unlearn.plugins.load_plugins` (docs/extending.md).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from unlearn.errors import ConfigError

T = TypeVar("T")


class RegistryError(ConfigError):
    """A name registered twice, or an entry that is not what the registry holds."""


class Registry(Mapping[str, T], Generic[T]):
    """``kind`` names the entries in messages (``forget objective``); ``loader`` imports the built-in modules the
    first time the registry is read (so that importing the registry itself stays cheap and free of circles); names
    are case-insensitive unless ``fold_case=False``."""

    def __init__(self, kind: str, loader: Callable[[], None] | None = None, hint: str = "",
                 fold_case: bool = True):
        self.kind = kind
        self.hint = hint
        self.fold_case = fold_case  # False keeps names as given (task names were always case-sensitive)
        self._loader = loader
        self._loaded = False
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._origin: dict[str, str] = {}

    # -- writing -------------------------------------------------------------------------------------------
    def register(self, name: str, entry: T, *, aliases: tuple[str, ...] = (), origin: str = "") -> T:
        """Add ``entry`` under ``name`` and ``aliases``; returns ``entry``, so that it serves as a class
        decorator's body."""
        key = self._key(name)
        if not key:
            raise RegistryError(f"a {self.kind} needs a non-empty name")
        origin = origin or getattr(entry, "__module__", "") or "?"
        for taken in (key, *(self._key(a) for a in aliases)):
            if taken in self._entries or taken in self._aliases:
                first = self._origin.get(self._aliases.get(taken, taken), "?")
                raise RegistryError(f"{self.kind} {taken!r} is registered twice: by {first} and by {origin}; "
                                    "give the new one another name")
        self._entries[key] = entry
        self._origin[key] = origin
        for alias in aliases:
            self._aliases[self._key(alias)] = key
        return entry

    # -- reading -------------------------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """The registered name behind ``name`` or one of its aliases (``name`` itself when unknown)."""
        self._load()
        key = self._key(name)
        return self._aliases.get(key, key)

    def get_entry(self, name: str) -> T:
        """The entry of ``name`` (or an alias); unknown is one line with the closest names."""
        key = self.canonical(name)
        if key in self._entries:
            return self._entries[key]
        raise ConfigError(self.unknown(name))

    def unknown(self, name: str) -> str:
        """The message for an unknown ``name``: the closest known names, else all of them."""
        self._load()
        known = [*self._entries, *self._aliases]
        close = difflib.get_close_matches(self._key(name), known, n=3, cutoff=0.6)
        guess = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"unknown {self.kind} {name!r}; {guess}known: {', '.join(self._entries)}{hint}"

    def origin(self, name: str) -> str:
        """The module that registered ``name``."""
        return self._origin[self.canonical(name)]

    def __getitem__(self, name: str) -> T:
        key = self.canonical(name)
        return self._entries[key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(self._entries)

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"

    # -- internals -----------------------------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return name.strip().lower() if self.fold_case else name.strip()

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # first, so a loader that reads the registry does not recurse
            if self._loader is not None:
                self._loader()
            from unlearn.plugins import load_entry_points

            load_entry_points()  # installed plugins, once per process, whoever reads a registry first

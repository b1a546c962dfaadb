"""Registries: a dict plus a decorator (after Dassl's small Registry class).

Names are explicit and lowercase; registering a name twice raises; looking up an unknown name
raises with the closest match and the full list. Third-party packages add entries through an
entry-point group: each entry point names a module (importing it registers its entries with
the decorator) or an object (registered under the entry point's name).

Each registry lives beside its extension point: ``AUGMENTERS`` in ``dgbench.augmenters``,
``DATASETS`` in :mod:`dgbench.data.base`, ``PROTOCOLS`` in :mod:`dgbench.data.protocols`,
``BACKBONES`` in :mod:`dgbench.models.backbones`, ``TASKS`` in :mod:`dgbench.tasks._base` and
``VIEWS`` (a task's records read as results) in :mod:`dgbench.results.views._base`.
"""

from __future__ import annotations

import importlib.metadata
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

from dgbench.core.errors import UnknownNameError, did_you_mean

T = TypeVar("T")

_NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")


@dataclass(frozen=True)
class Entry:
    """One registered object with its name and one-line description."""

    name: str
    obj: Any
    description: str
    source: str  # "dgbench" or the distribution/module that registered it


def first_doc_line(obj: Any) -> str:
    doc = getattr(obj, "__doc__", None) or ""
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


class Registry:
    """A named collection of components, e.g. ``AUGMENTERS``."""

    def __init__(
        self,
        kind: str,
        entry_point_group: str | None = None,
        builtins: str | None = None,
    ) -> None:
        self.kind = kind  # singular noun used in messages: "augmenter"
        self.entry_point_group = entry_point_group
        self.builtins = builtins  # module whose import registers the built-in entries
        self._entries: dict[str, Entry] = {}
        self._loaded = False
        self._loading_source: str | None = None

    # -- registration -------------------------------------------------------------------
    def register(self, name: str, description: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@AUGMENTERS.register("efdmix")``."""

        def decorator(obj: T) -> T:
            self.add(name, obj, description)
            return obj

        return decorator

    def add(self, name: str, obj: Any, description: str | None = None) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"{self.kind} name {name!r} must be lowercase letters, digits, '_' or '-', "
                "starting with a letter"
            )
        if name in self._entries:
            raise ValueError(
                f"{self.kind} {name!r} is already registered "
                f"(by {self._entries[name].source}); pick another name"
            )
        source = self._loading_source or getattr(obj, "__module__", "?") or "?"
        self._entries[name] = Entry(name, obj, description or first_doc_line(obj), source)

    def remove(self, name: str) -> None:
        """Unregister ``name`` (for tests and interactive use)."""
        self._entries.pop(name, None)

    # -- lookup ---------------------------------------------------------------------------
    def _load_plugins(self) -> None:
        """On first lookup: import the built-ins, then every entry point of the group."""
        if self._loaded:
            return
        self._loaded = True
        if self.builtins:
            importlib.import_module(self.builtins)
        if not self.entry_point_group:
            return
        for ep in importlib.metadata.entry_points(group=self.entry_point_group):
            dist = getattr(ep, "dist", None)
            source = f"plugin {ep.name!r} ({dist.name if dist else ep.value})"
            self._loading_source = source
            try:
                loaded = ep.load()
                if ep.attr and ep.name not in self._entries:
                    # "name = pkg.module:Object": register the object under the entry's name
                    self.add(ep.name, loaded)
            except Exception as exc:  # a broken plugin must not break dgbench
                warnings.warn(
                    f"dgbench: could not load {self.kind} {source} from entry point "
                    f"{ep.value!r}: {type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            finally:
                self._loading_source = None

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        self._load_plugins()
        if name in self._entries:
            return self._entries[name]
        known = sorted(self._entries)
        hint = did_you_mean(name, known, cutoff=0.5)
        if hint and isinstance(name, str) and name.lower() in known:
            hint += " (names are lowercase)"
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(known)}"
        )

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


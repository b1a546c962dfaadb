"""Dotted keys (``train.lr``, ``aug.args.alpha``) over nested settings: plain mappings (a
record's config) and dataclasses (a :class:`dgbench.config.Config`) alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

MISSING = object()


def get(tree: Any, key: str, default: Any = None) -> Any:
    """The value at the dotted ``key`` of ``tree``; ``default`` where a part is missing."""
    node = tree
    for part in key.split("."):
        if isinstance(node, Mapping):
            node = node.get(part, MISSING)
        elif dataclasses.is_dataclass(node):
            node = getattr(node, part, MISSING)
        else:  # a value has no parts
            return default
        if node is MISSING:
            return default
    return node


def assign(tree: Any, key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``tree`` (its parents must exist)."""
    *parents, leaf = key.split(".")
    node = get(tree, ".".join(parents)) if parents else tree
    if isinstance(node, dict):
        node[leaf] = value
    else:
        setattr(node, leaf, value)


def drop(tree: dict[str, Any], key: str) -> None:
    """Remove the dotted ``key`` from the mapping ``tree``, if it is there."""
    *parents, leaf = key.split(".")
    node = get(tree, ".".join(parents)) if parents else tree
    if isinstance(node, dict):
        node.pop(leaf, None)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"test_acc": {"photo": 0.5}}`` -> ``{"test_acc.photo": 0.5}``; an empty mapping adds
    no key."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out

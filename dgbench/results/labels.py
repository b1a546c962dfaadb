"""Row labels: which runs are one variant (a table row), and the words that tell variants
apart; a run's family (what ``--select oracle`` chooses within)."""

from __future__ import annotations

import json
from typing import Any

from dgbench import config as C
from dgbench.core.errors import UnknownNameError
from dgbench.core.keys import flatten


def text(value: Any) -> str:
    """A setting as a label shows it: lists comma-joined."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def count(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and the noun in the number it takes: ``1 run``, ``2 runs``, ``0 runs``."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def seeds_text(seeds: list[int]) -> str:
    """``seed 1`` or ``seeds 1, 2, 3`` (``no seeds`` for none)."""
    return f"seed {seeds[0]}" if len(seeds) == 1 else (
        "seeds " + ", ".join(map(str, seeds)) if seeds else "no seeds")


def _is_float(value: Any) -> bool:
    return isinstance(value, float) or (isinstance(value, list)
                                        and any(isinstance(v, float) for v in value))


def _rounded(value: Any, digits: int) -> str:
    """``value`` as :func:`text` shows it, its floats to ``digits`` significant digits."""
    if isinstance(value, list):
        return ",".join(_rounded(v, digits) for v in value)
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def distinct_texts(values: list[Any], digits: int = 4) -> dict[str, str]:
    """Short texts of ``values`` (keyed by ``json.dumps`` of each): floats with ``digits``
    significant digits, or more where fewer would show two different values alike (a
    sweep's 0.30000000000000004 reads 0.3, and 0.12345 and 0.12346 stay apart)."""
    keyed = {json.dumps(v, sort_keys=True, default=str): v for v in values}
    floats = [k for k, v in keyed.items() if _is_float(v)]
    for d in range(digits, 18):
        shown = {k: _rounded(keyed[k], d) for k in floats}
        if len(set(shown.values())) == len(shown):
            break
    return {k: shown[k] if k in shown else text(v) for k, v in keyed.items()}


def _short(key: str) -> str:
    if key.startswith("aug.args."):
        return key[len("aug.args."):]
    return {"aug.insert": "insert"}.get(key, key)


def _searched(record: dict[str, Any]) -> set[str]:
    """The hyperparameters the record's augmenter declares for a search: as recorded, or for
    records older than schema 3, as the installed augmenter declares them (none where it is
    not installed here)."""
    if "searched" in record:
        return set(record["searched"])
    from dgbench.augmenters import AUGMENTERS  # lazy: torch, only for records before schema 3

    try:
        return set(getattr(AUGMENTERS.get(record["aug"]), "search", None) or {})
    except UnknownNameError:
        return set()


def variant_labels(records: list[dict[str, Any]], with_args: bool = True) -> list[str]:
    """A row label per record: the augmenter, plus the settings that tell its rows apart.

    A variant is a set of runs whose configs agree on everything but the keys that differ
    between the runs of one comparison (``seeds``, ``protocol.targets``) and the keys that
    are not part of a run's identity (``experiment``, ``data.root``). Without ``with_args``
    the hyperparameters the augmenter's ``search`` declares are not looked at either: the
    label of a run's family, the variants that differ only in what a sweep searches.
    """
    ignored = set(C.PER_RUN) | set(C.NOT_IDENTITY)
    flat_cfgs = []
    for r in records:
        searched = set() if with_args else {f"aug.args.{a}" for a in _searched(r)}
        f = {k: v for k, v in flatten(r["config"]).items()
             if k not in ignored and k not in searched}
        if f.get("aug.names") == ["none"]:  # the identity is the same wherever it sits
            f.pop("aug.insert", None)
        flat_cfgs.append(f)
    group_key = [json.dumps(f, sort_keys=True, default=str) for f in flat_cfgs]
    groups = list(dict.fromkeys(group_key))
    rep = {g: flat_cfgs[group_key.index(g)] for g in groups}
    keys = sorted(set().union(*rep.values())) if rep else []

    def varies(members: list[str], key: str) -> bool:  # among the groups that have the key
        return len({json.dumps(rep[g][key], default=str) for g in members if key in rep[g]}) > 1

    shown = {key: distinct_texts([rep[g][key] for g in groups if key in rep[g]]) for key in keys}

    def value(g: str, key: str) -> str:
        return shown[key][json.dumps(rep[g][key], sort_keys=True, default=str)]

    labels = {}
    for g in groups:
        name = rep[g]["aug.names"][0]
        same_aug = [h for h in groups if rep[h]["aug.names"][0] == name]
        extra = [f"{_short(key)}={value(g, key)}" for key in keys
                 if key != "aug.names" and key in rep[g]
                 and varies(same_aug if key.startswith("aug.args.") else groups, key)]
        labels[g] = f"{name} ({', '.join(extra)})" if extra else name
    return [labels[g] for g in group_key]

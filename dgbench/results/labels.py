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

    labels = {}
    for g in groups:
        name = rep[g]["aug.names"][0]
        same_aug = [h for h in groups if rep[h]["aug.names"][0] == name]
        extra = [f"{_short(key)}={text(rep[g].get(key))}" for key in keys
                 if key != "aug.names" and key in rep[g]
                 and varies(same_aug if key.startswith("aug.args.") else groups, key)]
        labels[g] = f"{name} ({', '.join(extra)})" if extra else name
    return [labels[g] for g in group_key]

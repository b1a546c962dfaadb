"""Run records as one pandas DataFrame: the one way dgbench reads results, and yours.

``load(folder)`` reads every finished record under a results folder (records of schema 1, 2 and
3) into a DataFrame with one row per run x test set x evaluated epoch. Classification runs are
evaluated every epoch (rows for each epoch); re-identification runs once, at the last epoch.
Tables are groupby/aggregate over it (:mod:`dgbench.tables`).

Columns:

============== =====================================================================
run            ``experiment``, ``run_id``, ``task``, ``protocol``, ``dataset``,
               ``target_dataset`` (cross-dataset protocols), ``backbone``
augmenter      ``aug`` (name), ``aug_args`` (``"alpha=0.1, mix=random, p=0.5"``), one
               ``aug.<argument>`` column per argument, ``insert`` (``"layer1,layer2"``),
               ``variant`` (the table row label: the augmenter plus the settings that
               tell it apart from the other runs of the frame), ``family`` (the same
               without the hyperparameters the augmenter's ``search`` declares: what
               ``--select oracle`` chooses within)
split          ``seed``, ``split`` (the protocol's split: the held-out domain under LODO,
               the source under single-source, the direction for reid), ``split_index``,
               ``split_title`` (the table's column title), ``role`` (``test``, or
               ``validation``: a leave-one-domain-out validation run of the split ``of``)
epoch          ``epoch`` (1-based), ``epochs``, ``last``, ``per_epoch`` (the run was
               evaluated every epoch), ``lr``, ``loss``, ``train_acc``, ``val_acc``
               (source validation; classification), ``score`` (the run's pooled score at
               that epoch: accuracy over all its test sets, or mean mAP); classification:
               ``oracle_val`` (accuracy on the held-out 20% of the test sets, pooled),
               ``oracle_score`` (on the other 80%, pooled), ``oracle_acc`` (per test set)
test set       ``test``, ``test_index``, ``test_title``; classification: ``acc``, ``n``;
               reid: ``mAP``, ``rank1``, ``rank5``, ``rank10``, ``rank20``, ``n_query``,
               ``n_gallery``
config         ``config``: the run's whole resolved config (a dict)
============== =====================================================================

Metric values are fractions in [0, 1]. ``frame.attrs`` holds ``unfinished`` (the configs of
runs started but not finished), ``failed`` (their ``error.json``) and ``skipped`` (files that
could not be read, with why).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from dgbench import config as C
from dgbench.history import flat as _flatten  # an empty mapping (no augmenter arguments) adds no key


def load(folder: str | Path) -> pd.DataFrame:
    """Every finished record under ``folder`` as a DataFrame (see the module's columns).
    Damaged or foreign files are skipped with a warning each, and a count."""
    import warnings

    from dgbench.records import scan_folder

    found = scan_folder(folder)
    for line in found.skipped:
        warnings.warn(f"skipped {line}")
    if found.skipped:
        warnings.warn(f"{len(found.skipped)} file(s) under {folder} skipped: not read as results")
    out = frame(found.records)
    out.attrs.update(unfinished=found.unfinished, failed=found.failed, skipped=found.skipped)
    return out


def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The DataFrame of ``records`` (dicts as written to ``record.json``)."""
    from dgbench.tasks import get_task, record_task

    rows = []
    for record, variant, family in zip(records, variant_labels(records),
                                       variant_labels(records, with_args=False)):
        task = record_task(record)
        run = {**_run_columns(record, task, variant), "family": family}
        rows += [{**run, **row} for row in get_task(task).result_rows(record)]
    out = pd.DataFrame(rows)
    if len(out):
        out["last"] = out["epoch"] == out.groupby("run_id")["epoch"].transform("max")
    out.attrs.update(unfinished=[], failed=[], skipped=[])
    return out


def _run_columns(record: dict[str, Any], task: str, variant: str) -> dict[str, Any]:
    cfg, split = record["config"], record["split"]
    titles = record.get("dataset", {}).get("titles", {})
    args = cfg["aug"]["args"]
    return {
        "experiment": record.get("experiment"), "run_id": record["run_id"], "task": task,
        "protocol": cfg["protocol"]["name"], "dataset": cfg["data"]["name"],
        "target_dataset": cfg["protocol"].get("target"), "backbone": cfg["model"]["backbone"],
        "aug": record["aug"], "aug_args": ", ".join(f"{k}={_text(v)}" for k, v in sorted(args.items())),
        **{f"aug.{k}": v for k, v in args.items()},
        "insert": _text(cfg["aug"]["insert"]), "variant": variant, "seed": record["seed"],
        "split": split["name"], "split_index": split.get("index", 0),
        "split_title": titles.get(split["name"], split["name"]),
        "role": split.get("role", "test"), "of": split.get("of"),
        "epochs": cfg["train"]["epochs"], "config": cfg,
    }


def _text(value: Any) -> str:
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
    from dgbench.registry import AUGMENTERS, UnknownNameError

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
        f = {k: v for k, v in _flatten(r["config"]).items()
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
        extra = [f"{_short(key)}={_text(rep[g].get(key))}" for key in keys
                 if key != "aug.names" and key in rep[g]
                 and varies(same_aug if key.startswith("aug.args.") else groups, key)]
        labels[g] = f"{name} ({', '.join(extra)})" if extra else name
    return [labels[g] for g in group_key]

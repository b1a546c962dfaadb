"""Run records as one pandas DataFrame: the one way dgbench reads results, and yours.

``load(folder)`` reads every finished record under a results folder (records of schema 1, 2 and
3) into a DataFrame with one row per run x test set x evaluated epoch. Classification runs are
evaluated every epoch (rows for each epoch); re-identification runs once, at the last epoch.
Tables are groupby/aggregate over it (:mod:`dgbench.results.tables`); it needs no torch.

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

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from dgbench.results.labels import text, variant_labels
from dgbench.results.views._base import record_task, view
from dgbench.store.records import Folder, scan_folder


def load(folder: str | Path) -> pd.DataFrame:
    """Every finished record under ``folder`` as a DataFrame (see the module's columns).
    Damaged or foreign files are skipped with a warning each, and a count."""
    return of_folder(scan_folder(folder), folder)


def of_folder(found: Folder, folder: str | Path) -> pd.DataFrame:
    """The DataFrame of a results folder already read (:func:`dgbench.store.records.scan_folder`),
    with a warning for each file skipped."""
    for line in found.skipped:
        warnings.warn(f"skipped {line}")
    if found.skipped:
        warnings.warn(f"{len(found.skipped)} file(s) under {folder} skipped: not read as results")
    out = frame(found.records)
    out.attrs.update(unfinished=found.unfinished, failed=found.failed, skipped=found.skipped)
    return out


def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The DataFrame of ``records`` (dicts as written to ``record.json``)."""
    rows = []
    for record, variant, family in zip(records, variant_labels(records),
                                       variant_labels(records, with_args=False)):
        task = record_task(record)
        run = {**_run_columns(record, task, variant), "family": family}
        rows += [{**run, **row} for row in view(task).result_rows(record)]
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
        "aug": record["aug"], "aug_args": ", ".join(f"{k}={text(v)}" for k, v in sorted(args.items())),
        **{f"aug.{k}": v for k, v in args.items()},
        "insert": text(cfg["aug"]["insert"]), "variant": variant, "seed": record["seed"],
        "split": split["name"], "split_index": split.get("index", 0),
        "split_title": titles.get(split["name"], split["name"]),
        "role": split.get("role", "test"), "of": split.get("of"),
        "epochs": cfg["train"]["epochs"], "config": cfg,
    }

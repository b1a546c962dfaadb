"""Selection rules: which epoch (and, for the oracle, which run) of each run a table reports.

Each rule is one named :class:`Rule` (DomainBed's ``SelectionMethod`` is the model): its name
for ``--select``, the words a caption and ``--help`` use, DomainBed's name for it, and the
function that picks the rows. The command line's choices, the tables, the plots, the report
and a task's supported rules (``TaskView.selections``) all read :data:`RULES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from dgbench.core.errors import DataError


@dataclass(frozen=True)
class Rule:
    name: str
    description: str  # a caption's words: "each cell is the mean ... of <description>"
    help: str  # --help's words
    domainbed: str  # DomainBed's name of the model-selection method
    pick: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]  # (all rows, test rows) -> rows
    per_epoch: bool = True  # judges epochs: needs runs evaluated after every epoch


def _last(frame: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    return tests[tests["last"]]


def _best_epoch(key: str) -> Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]:
    """The epoch with the highest ``key`` in each run (the latest of equal ones)."""
    def pick(frame: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
        epochs = tests.drop_duplicates(["run_id", "epoch"])
        best = epochs.sort_values(["run_id", key, "epoch"], ascending=[True, False, False])
        return _at(tests, set(best.drop_duplicates("run_id")[["run_id", "epoch"]]
                              .itertuples(index=False)))
    return pick


def _at(tests: pd.DataFrame, picked: set[tuple[str, int]]) -> pd.DataFrame:
    return tests[[(r, e) in picked for r, e in zip(tests["run_id"], tests["epoch"])]]


def _loo(frame: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    return _at(tests, _loo_epochs(frame, tests))


def _loo_epochs(frame: pd.DataFrame, tests: pd.DataFrame) -> set[tuple[str, int]]:
    """(run, epoch) of each test run at the epoch where its validation runs (same variant and
    seed, one per held-out source) score best on average."""
    vals = frame[frame["role"] == "validation"].drop_duplicates(["run_id", "epoch"])
    held_out = vals.groupby("of")["split"].nunique().to_dict()  # validation runs per target
    mean = vals.groupby(["variant", "seed", "of", "epoch"])["score"].agg(["mean", "count"])
    picked = set()
    for run in tests.drop_duplicates("run_id").itertuples(index=False):
        key = (run.variant, run.seed, run.split)
        rows = mean.loc[key] if key in mean.index.droplevel("epoch") else None
        if rows is None or (rows["count"] < held_out.get(run.split, 0)).any():
            raise DataError(
                f"--select loo needs the leave-one-domain-out validation runs of {run.variant} "
                f"seed {run.seed} {run.split}, finished: run the same command with "
                "protocol.loo_validation=true")
        picked.add((run.run_id, max(rows.index, key=lambda e: (rows.loc[e, "mean"], e))))
    return picked


def _oracle(frame: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    return oracle_runs(tests)


def oracle_runs(tests: pd.DataFrame) -> pd.DataFrame:
    """DomainBed's test-domain oracle: the final model of each run; among the runs of a family
    (variants that differ only in the hyperparameters the augmenter's ``search`` declares,
    what a sweep searches) with the same seed and split, the one with the best accuracy on
    the held-out 20% of its test domains (``oracle_val``; the earliest run id of equal ones),
    reported on the other 80% (``oracle_acc``, ``oracle_score`` replace ``acc`` and
    ``score``). The rows are
    relabelled with their family; ``candidates`` says among how many runs each was chosen."""
    final = tests[tests["last"]]
    if "oracle_val" not in final or final["oracle_val"].isna().any():
        r = final.iloc[0] if "oracle_val" not in final else final[final["oracle_val"].isna()].iloc[0]
        raise DataError(f"run {r['run_id']} ({r['aug']} seed {r['seed']}) has no held-out part of "
                        "its test domains, so --select oracle cannot judge it (recorded before "
                        "dgbench evaluated one, or a test set of one image); rerun it with --force")
    runs = final.drop_duplicates("run_id").sort_values(["run_id"])
    groups = runs.groupby(["family", "seed", "split"], sort=False)
    best = runs.loc[groups["oracle_val"].idxmax()]
    counts = groups["run_id"].transform("count")
    chosen = final[final["run_id"].isin(set(best["run_id"]))]
    return chosen.assign(variant=chosen["family"], acc=chosen["oracle_acc"],
                         score=chosen["oracle_score"],
                         candidates=chosen["run_id"].map(dict(zip(runs["run_id"], counts))))


RULES = {r.name: r for r in (
    Rule("last", "the last-epoch model (the published rule)", "the last epoch (the published "
         "rule, default)", "last epoch (no model selection)", _last, per_epoch=False),
    Rule("val", "the epoch with the best source-validation accuracy (training-domain "
         "validation)", "the best source-validation accuracy",
         "training-domain validation set", _best_epoch("val_acc")),
    Rule("loo", "the epoch with the best mean accuracy on the held-out source of each "
         "leave-one-domain-out validation run (DomainBed's leave-one-domain-out validation)",
         "leave-one-domain-out validation: needs runs made with protocol.loo_validation=true",
         "leave-one-domain-out cross-validation", _loo),
    Rule("oracle", "the final model of the augmenter-argument setting with the best accuracy "
         "on a held-out 20% of the test domains, reported on the other 80% (DomainBed's "
         "test-domain oracle: it selects on target data, a bound rather than a "
         "domain-generalization result)", "DomainBed's test-domain oracle: the final model of "
         "the argument setting best on a held-out 20% of the target, reported on the other "
         "80%; for sweeps", "test-domain validation set (oracle)", _oracle, per_epoch=False),
    Rule("test-best", "TEST-BEST: the epoch with the best accuracy on the test domain itself "
         "(optimistic: it selects on the test data; not a domain-generalization result)",
         "best test accuracy: optimistic", "best test-domain epoch (optimistic)",
         _best_epoch("score")),
)}


def check(rule: str) -> Rule:
    """The rule named ``rule``; an unknown name is a DataError listing the rules."""
    if rule not in RULES:
        raise DataError(f"selection must be one of {', '.join(RULES)}; got {rule!r}")
    return RULES[rule]


def check_task_rule(view: Any, rule: str) -> None:
    """A rule the task's records cannot serve (re-identification runs are evaluated once, at
    their end) is an error."""
    if rule not in view.selections:
        raise DataError(f"{view.name} runs are evaluated once, on the final model: --select "
                        f"{rule} does not apply (use last)")


def select_epochs(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The test runs' rows at the epoch (the run) ``rule`` picks in each run. Never falls back
    to another rule: a run evaluated only at its end cannot be judged per epoch, and says
    so."""
    chosen = check(rule)
    if frame.empty:
        return frame
    tests = frame[frame["role"] == "test"]
    if chosen.per_epoch:
        judged = frame[~frame["per_epoch"].astype(bool)]
        if len(judged):
            r = judged.iloc[0]
            raise DataError(f"run {r['run_id']} ({r['aug']} seed {r['seed']}) has no per-epoch "
                            f"test accuracy, so --select {rule} cannot judge it; rerun it with "
                            "--force")
    return chosen.pick(frame, tests)

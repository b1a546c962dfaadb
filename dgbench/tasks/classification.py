"""Domain-generalization classification (PACS, digits): the protocol's domains train, the
held-out ones are tested, every epoch, so that any selection rule can be applied later."""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dgbench.data import concat, subsample
from dgbench.device import Env
from dgbench.errors import ConfigError
from dgbench.evaluate import count_correct, evaluate_tests
from dgbench.registry import TASKS
from dgbench.tasks import RunData, Task, check_sizes

SELECTIONS = {
    "last": "the last-epoch model (the published rule)",
    "val": "the epoch with the best source-validation accuracy (training-domain validation)",
    "loo": "the epoch with the best mean accuracy on the held-out source of each "
    "leave-one-domain-out validation run (DomainBed's leave-one-domain-out validation)",
    "oracle": "the final model of the augmenter-argument setting with the best accuracy on a "
    "held-out 20% of the test domains, reported on the other 80% (DomainBed's test-domain "
    "oracle: it selects on target data, a bound rather than a domain-generalization result)",
    "test-best": "TEST-BEST: the epoch with the best accuracy on the test domain itself "
    "(optimistic: it selects on the test data; not a domain-generalization result)",
}


def _pooled(test: dict[str, dict[str, Any]], part: str) -> float | None:
    """Accuracy over the ``part`` (held / rest) of every test set; None where it is empty."""
    correct, n = (sum(v[part][i] for v in test.values()) for i in (0, 1))
    return correct / n if n else None


@TASKS.register("classification")
class Classification(Task):
    """Image classification across domains: accuracy per held-out domain, pooled over several."""

    name = "classification"
    noun = "domain-generalization classification"
    usage = "use --protocol lodo or --protocol single"
    selections = tuple(SELECTIONS)
    averages = True

    def num_outputs(self, dataset: Any, split: Any) -> int:
        return dataset.num_classes

    def check_domains(self, aug: str, dataset: Any, split: Any) -> None:
        if len(split.sources) < 2:
            raise ConfigError(
                f"{aug} with mix=crossdomain (or train.sampler=domain) needs at least two "
                f"source domains, but split {split.name} trains on {', '.join(split.sources)}"
                "; use mix=random")

    def check_data(self, cfg: Any, split: Any, dataset: Any, target: Any) -> None:
        def size(domain: str, name: str) -> int:
            return len(subsample(dataset.subset(domain, name, train=False), cfg.data.subsample))

        parts = {f"the {s} part of domain {d}": size(d, s)
                 for d, s in (*split.train, *split.val, *split.test.values())}
        check_sizes(split, cfg, parts, [size(d, s) for d, s in split.train])

    def build_model(self, cfg: Any, num_outputs: int, pretrained: bool | None = None) -> nn.Module:
        from dgbench.models import build_backbone

        m = cfg.model
        return build_backbone(m.backbone, num_outputs, m.stem, m.width,
                              m.pretrained if pretrained is None else pretrained, m.weights)

    def data(self, cfg: Any, split: Any, dataset: Any, target: Any, cache: Any,
             make_loader: Callable[[Dataset], DataLoader]) -> RunData:
        def part(domain: str, name: str, train: bool) -> Dataset:
            return subsample(dataset.part(domain, name, train, cache), cfg.data.subsample)

        train = [part(d, s, True) for d, s in split.train]
        val = concat([part(d, s, False) for d, s in split.val])
        tests = {name: part(d, s, False) for name, (d, s) in split.test.items()}
        sizes = {"train": sum(len(p) for p in train), "val": len(val),
                 "test": {k: len(v) for k, v in tests.items()}}
        state = {"val": make_loader(val), "tests": {k: make_loader(v) for k, v in tests.items()},
                 "seed": cfg.seeds[0]}
        return RunData(train, dataset.num_classes, sizes, make_loader, state)

    def evaluate_epoch(self, model: nn.Module, data: RunData, env: Env) -> dict[str, Any]:
        """Source validation and each test domain (and their pool) with the current model;
        ``oracle_*``: the same split into DomainBed's test-domain oracle parts (selection on
        ``oracle_val``, the pooled held-out 20%; reported: the other 80%)."""
        val_correct, val_total = count_correct(model, data.state["val"], env)
        val_acc = val_correct / max(val_total, 1)
        test, score = evaluate_tests(model, data.state["tests"], env, data.state["seed"])
        data.state["last"] = (val_acc, test, score)
        return {"val_acc": val_acc, "test_acc": {k: v["acc"] for k, v in test.items()},
                "score": score, "oracle_val": _pooled(test, "held"),
                "oracle_acc": {k: _pooled({k: v}, "rest") for k, v in test.items()},
                "oracle_score": _pooled(test, "rest")}

    def final(self, model: nn.Module, data: RunData, env: Env) -> dict[str, Any]:
        if "last" not in data.state:  # resumed after its last epoch: evaluate that model now
            self.evaluate_epoch(model, data, env)
        val_acc, test, score = data.state["last"]  # the last epoch's evaluation
        return {"val_acc": val_acc, "test": test, "score": score, "selection": "last epoch"}

    def outcome(self, record: dict[str, Any]) -> str:
        final = record["final"]
        tests = "  ".join(f"{k} {100 * v['acc']:.1f}" for k, v in final["test"].items())
        return f"source-val {100 * final['val_acc']:.1f}  test {tests}"

    # -- results and tables -------------------------------------------------------------------
    def result_rows(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Every epoch when the history holds per-epoch test accuracy (``per_epoch``), else
        the final model only (records written before dgbench evaluated every epoch)."""
        history, final = record.get("history") or [], record["final"]
        titles = record.get("dataset", {}).get("titles", {})
        sizes = record.get("sizes", {}).get("test", {})
        per_epoch = bool(history) and all("test_acc" in h for h in history)
        if per_epoch:
            epochs = [(h, h["test_acc"], h["score"], h["val_acc"]) for h in history]
        else:
            last = history[-1] if history else {}
            epochs = [({**last, "epoch": len(history)},
                       {k: v["acc"] for k, v in final["test"].items()},
                       final["score"], final.get("val_acc"))]
        rows = []
        for h, accs, score, val_acc in epochs:
            for i, (test, acc) in enumerate(accs.items()):
                rows.append({"epoch": h.get("epoch"), "lr": h.get("lr"), "loss": h.get("loss"),
                             "train_acc": h.get("train_acc"), "val_acc": val_acc,
                             "score": score, "test": test, "test_index": i,
                             "test_title": titles.get(test, test), "acc": acc,
                             "n": sizes.get(test), "per_epoch": per_epoch,
                             "oracle_val": h.get("oracle_val"),
                             "oracle_acc": (h.get("oracle_acc") or {}).get(test),
                             "oracle_score": h.get("oracle_score")})
        return rows

    def cells(self, chosen: pd.DataFrame, per_target: bool) -> pd.DataFrame:
        """One column per split (the run's pooled score), or per source -> target pair."""
        if per_target:
            return chosen.assign(column=chosen["split_title"] + "->" + chosen["test_title"],
                                 order=list(zip(chosen["split_index"], chosen["test_index"])),
                                 value=chosen["acc"])
        runs = chosen.drop_duplicates("run_id")
        return runs.assign(column=runs["split_title"],
                           order=[(i, 0) for i in runs["split_index"]], value=runs["score"])

    def caption(self, table: Any) -> str:
        from dgbench.tables import ERRORS

        what = {
            "lodo": "held-out target domain",
            "single": "source domain (each column is the accuracy pooled over the other "
            "domains, whole)",
        }.get(table.protocol, "split")
        if table.per_target:
            what = "source -> target pair"
        return (
            f"Test accuracy (%) per {what} ({table.protocol}); each cell is the mean ± "
            f"{ERRORS[table.error]} over seeds {', '.join(map(str, table.seeds))} of "
            f"{SELECTIONS[table.select]}; (n=k) marks a cell with fewer runs; Avg is the mean "
            "of the per-column means; X is a missing cell."
        )

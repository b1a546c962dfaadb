"""Domain-generalization classification (PACS, digits): the protocol's domains train, the
held-out ones are tested, every epoch, so that any selection rule can be applied later."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn
from torch.utils.data import DataLoader, Dataset

from dgbench.core.device import Env
from dgbench.core.errors import ConfigError, DataError
from dgbench.data.base import concat, subsample
from dgbench.models.backbones import build_backbone
from dgbench.tasks._base import TASKS, RunData, Task, check_sizes
from dgbench.tasks.evaluate import count_correct, evaluate_tests

def _accuracy(model: nn.Module, loader: DataLoader, env: Env) -> float:
    correct, total = count_correct(model, loader, env)
    return correct / max(total, 1)


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

    def num_outputs(self, dataset: Any, split: Any) -> int:
        return dataset.num_classes

    def check_domains(self, aug: str, dataset: Any, split: Any) -> None:
        if len(split.sources) < 2:
            raise ConfigError(
                f"{aug} with mix=crossdomain (or train.sampler=domain) needs at least two "
                f"source domains, but split {split.name} trains on {', '.join(split.sources)}"
                "; use mix=random")

    def check_data(self, cfg: Any, split: Any, dataset: Any, target: Any) -> None:
        if split.holdout:  # DomainBed's parts of this trial
            dataset.use_holdout(cfg.seeds[0], cfg.protocol.holdout_fraction)

        def size(domain: str, name: str) -> int:
            return len(subsample(dataset.subset(domain, name, train=False), cfg.data.subsample))

        parts = {f"the {s} part of domain {d}": size(d, s)
                 for d, s in (*split.train, *split.val, *split.test.values())}
        train = [size(d, s) for d, s in split.train]
        if split.holdout and min(train) < cfg.data.batch_size:
            d, s = split.train[train.index(min(train))]
            raise DataError(f"split {split.name}: the {s} part of domain {d} has {min(train)} "
                            f"images, fewer than a batch (data.batch_size {cfg.data.batch_size}"
                            ", per source domain under protocol domainbed); lower "
                            "data.batch_size")
        check_sizes(split, cfg, parts, train)

    def build_model(self, cfg: Any, num_outputs: int, pretrained: bool | None = None) -> nn.Module:
        m = cfg.model
        return build_backbone(m.backbone, num_outputs, m.stem, m.width,
                              m.pretrained if pretrained is None else pretrained, m.weights)

    def data(self, cfg: Any, split: Any, dataset: Any, target: Any, cache: Any,
             make_loader: Callable[[Dataset], DataLoader]) -> RunData:
        def part(domain: str, name: str, train: bool) -> Dataset:
            return subsample(dataset.part(domain, name, train, cache), cfg.data.subsample)

        if split.holdout:  # DomainBed's parts of this trial
            dataset.use_holdout(cfg.seeds[0], cfg.protocol.holdout_fraction)

        train = [part(d, s, True) for d, s in split.train]
        val = concat([part(d, s, False) for d, s in split.val])
        tests = {name: part(d, s, False) for name, (d, s) in split.test.items()}
        sizes = {"train": sum(len(p) for p in train), "val": len(val),
                 "test": {k: len(v) for k, v in tests.items()}}
        state = {"val": make_loader(val), "tests": {k: make_loader(v) for k, v in tests.items()},
                 "seed": cfg.seeds[0],
                 # DomainBed measures every part, a training domain's through its augmentation
                 "watch": {f"{d}:{s}": make_loader(part(d, s, d in split.sources))
                           for d, s in split.watch}}
        return RunData(train, dataset.num_classes, sizes, make_loader, state)

    def evaluate_epoch(self, model: nn.Module, data: RunData, env: Env) -> dict[str, Any]:
        """Source validation and each test domain (and their pool) with the current model;
        ``oracle_*``: the same split into DomainBed's test-domain oracle parts (selection on
        ``oracle_val``, the pooled held-out 20%; reported: the other 80%)."""
        val_correct, val_total = count_correct(model, data.state["val"], env)
        val_acc = val_correct / max(val_total, 1)
        test, score = evaluate_tests(model, data.state["tests"], env, data.state["seed"],
                                     classes=data.num_outputs)
        data.state["last"] = (val_acc, test, score)
        parts = {name: _accuracy(model, loader, env) for name, loader in data.state["watch"].items()}
        return {**({"parts": parts} if parts else {}), "val_acc": val_acc, "test_acc": {k: v["acc"] for k, v in test.items()},
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

"""Cross-dataset person re-identification (Market-1501 <-> GRID): identities of one dataset
train a ReID network; the final model ranks the other dataset's splits (mAP, CMC), as
published (torchreid's conventions; see the README's re-identification section)."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn
from torch.utils.data import DataLoader, Dataset

from dgbench.core.device import Env
from dgbench.core.errors import ConfigError
from dgbench.data.base import subsample
from dgbench.models.reidnet import build_reid_model
from dgbench.tasks._base import TASKS, RunData, Task, check_sizes
from dgbench.tasks.evaluate import evaluate_reid, mean_std

def _train_split(split: Any) -> int:
    """The index of the source split a run trains on."""
    return int(split.train[0][1])


@TASKS.register("reid")
class ReID(Task):
    """Person re-identification across datasets: mAP and CMC of the final model."""

    name = "reid"
    noun = "re-identification"
    usage = "use --protocol reid --target NAME"
    deviations = (
        "ReID ranking: gallery items at exactly equal distance are ordered by gallery index (a "
        "stable sort); torchreid's NumPy quicksort leaves their order unspecified.",
    )

    def num_outputs(self, dataset: Any, split: Any) -> int:
        return dataset.split(_train_split(split)).num_ids

    def check_domains(self, aug: str, dataset: Any, split: Any) -> None:
        """Cameras are the sampler's domains."""
        if len({c for _, _, c in dataset.split(_train_split(split)).train}) < 2:
            raise ConfigError(f"{aug} with mix=crossdomain pairs cameras, but split "
                              f"{split.name} trains on one camera; use mix=random")

    def check_data(self, cfg: Any, split: Any, dataset: Any, target: Any) -> None:
        k = _train_split(split)
        items = dataset.split(k).train
        by_camera = cfg.train.sampler == "domain"
        train = ([sum(1 for it in items if it[2] == c) for c in sorted({c for _, _, c in items})]
                 if by_camera else [len(items)])
        train = [min(n, cfg.data.subsample or n) for n in train]
        parts = {f"the training set of {split.train[0][0]} split {k}": len(items)}
        for name, (tgt, index) in split.test.items():
            s = target.split(int(index))
            parts.update({f"the query set of {name}": len(s.query),
                          f"the gallery of {name}": len(s.gallery)})
        check_sizes(split, cfg, parts, train)

    def build_model(self, cfg: Any, num_outputs: int, pretrained: bool | None = None) -> nn.Module:
        return build_reid_model(cfg, num_outputs, pretrained)

    def data(self, cfg: Any, split: Any, dataset: Any, target: Any, cache: Any,
             make_loader: Callable[[Dataset], DataLoader]) -> RunData:
        k = _train_split(split)
        by_camera = cfg.train.sampler == "domain"  # [camera A | camera B] batches
        train = [subsample(p, cfg.data.subsample) for p in dataset.train_parts(k, by_camera)]
        tests = {name: int(index) for name, (_, index) in split.test.items()}
        sizes = {"train": sum(len(p) for p in train), "val": 0, "test": {
            name: {"query": len(target.split(i).query), "gallery": len(target.split(i).gallery)}
            for name, i in tests.items()}}
        return RunData(train, dataset.split(k).num_ids, sizes, make_loader,
                       {"target": target, "tests": tests})

    def final(self, model: nn.Module, data: RunData, env: Env) -> dict[str, Any]:
        """The final model ranks each target split; no source validation, as published."""
        results = evaluate_reid(model, data.state["target"], data.state["tests"],
                                data.make_loader, env)
        mean, std = mean_std(results)
        return {"val_acc": None, "test": results, "score": mean["mAP"],
                "selection": "last epoch", "mean": mean, "std": std}

    def outcome(self, record: dict[str, Any]) -> str:
        final = record["final"]
        m, sd = final["mean"], final["std"]
        spread = (f" over {len(final['test'])} splits (std {100 * sd['mAP']:.1f} / "
                  f"{100 * sd['rank1']:.1f})") if len(final["test"]) > 1 else ""
        return f"mAP {100 * m['mAP']:.1f}  R1 {100 * m['rank1']:.1f}{spread}"

"""The task interface: what a run trains and evaluates, where classification and
re-identification differ.

A dataset names its task (``DomainDataset.task``); a protocol names the task it serves
(``Protocol.task``). The task object owns what differs between tasks while a run is planned
and trained: the model's outputs and head, the training parts and their sampler domains, the
size checks, what is evaluated each epoch and at the end, the record's ``final`` block and the
one-line outcome. How its records become rows, cells and a caption is the results side's
(:mod:`dgbench.results.views`: no torch there). The planner and the loop ask the task and
never test which task it is. A new task is one new file in this folder, imported in
``__init__.py`` and registered in :data:`TASKS`, and its view in ``dgbench/results/views/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from torch import nn
from torch.utils.data import DataLoader, Dataset

from dgbench.core.device import Env
from dgbench.core.errors import DataError
from dgbench.core.registry import Registry
from dgbench.data.protocols import Split

#: every task; a dataset's and a protocol's ``task`` name one of them
TASKS = Registry("task", builtins="dgbench.tasks")


@dataclass
class RunData:
    """What a task hands the training loop for one run."""

    train: list[Dataset]  # one part per sampler domain (the [A | B] sampler draws two)
    num_outputs: int  # classes, or training identities
    sizes: dict[str, Any]  # the record's "sizes" block
    make_loader: Callable[[Dataset], DataLoader]  # in-order evaluation loaders
    state: dict[str, Any] = field(default_factory=dict)  # the task's own (eval sets, results)


class Task:
    """The interface; :mod:`dgbench.tasks.classification` and :mod:`dgbench.tasks.reid`
    implement it."""

    name: ClassVar[str]
    #: what the task's datasets are called in messages
    noun: ClassVar[str]
    #: how to run such a dataset, said when the protocol does not fit it
    usage: ClassVar[str]
    #: where dgbench departs from the reference code for this task; stored in its records
    deviations: ClassVar[tuple[str, ...]] = ()

    # -- planning -----------------------------------------------------------------------------
    def num_outputs(self, dataset: Any, split: Split) -> int:
        raise NotImplementedError

    def check_domains(self, aug: str, dataset: Any, split: Split) -> None:
        """Refuse ``mix=crossdomain`` (the [A | B] sampler) where ``split`` trains on fewer
        than two sampler domains."""
        raise NotImplementedError

    def check_data(self, cfg: Any, split: Split, dataset: Any, target: Any) -> None:
        """Refuse, before anything is written, a split whose training, validation or test
        data is empty, or smaller than a batch (say which, and how many images it has)."""
        raise NotImplementedError

    def build_model(self, cfg: Any, num_outputs: int, pretrained: bool | None = None) -> nn.Module:
        """The network (``pretrained`` None: as configured); local weights are loaded."""
        raise NotImplementedError

    # -- training -----------------------------------------------------------------------------
    def data(self, cfg: Any, split: Split, dataset: Any, target: Any, cache: Any,
             make_loader: Callable[[Dataset], DataLoader]) -> RunData:
        raise NotImplementedError

    def evaluate_epoch(self, model: nn.Module, data: RunData, env: Env) -> dict[str, Any]:
        """Entries added to the epoch's history row (nothing when evaluated only at the end)."""
        return {}

    def final(self, model: nn.Module, data: RunData, env: Env) -> dict[str, Any]:
        """The record's ``final`` block: the last-epoch model's results."""
        raise NotImplementedError

    def outcome(self, record: dict[str, Any]) -> str:
        """One line: what a finished run scored."""
        raise NotImplementedError


def check_sizes(split: Any, cfg: Any, parts: dict[str, int], train: list[int]) -> None:
    """Empty parts (named in ``parts``: what -> images) and a batch larger than the training
    data (``train``: images per sampler domain) are errors that say how many images there are."""
    empty = [what for what, n in parts.items() if n == 0]
    if empty:
        raise DataError(f"split {split.name}: {empty[0]} has no images; check the dataset "
                        "(dgbench data NAME) and data.subsample")
    bs = cfg.data.batch_size
    if sum(train) < bs:
        raise DataError(f"data.batch_size {bs} is larger than the {sum(train)} training images "
                        f"of split {split.name}; lower data.batch_size")
    if cfg.train.sampler == "domain" and cfg.train.domain_epoch == "dassl" and min(train) < (bs + 1) // 2:
        raise DataError(f"train.domain_epoch=dassl draws half a batch ({(bs + 1) // 2}) from "
                        f"a domain, but a domain of split {split.name} has {min(train)} "
                        "training images; lower data.batch_size")


def get_task(name: str) -> Task:
    """The registered task ``name``, as an object."""
    return TASKS.get(name)()

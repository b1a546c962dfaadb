"""The loaders that feed training and evaluation: seeded, with the [A | B] domain sampler
where the augmenter mixes across domains, and :class:`ReadyBatches` handing the loop tensors
on the device."""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dgbench.data.base import concat
from dgbench.data.samplers import DOMAIN_SAMPLERS, StepSampler


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker with base_seed + worker_id (base_seed drawn from the loader's
    # seeded generator); derive Python's and NumPy's seeds from it.
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def loader_options(num_workers: int, pin_memory: bool) -> dict[str, Any]:
    return dict(num_workers=num_workers, pin_memory=pin_memory, worker_init_fn=_seed_worker)


def train_loader(parts: Sequence[Dataset], batch_size: int, by_domain: bool, seed: int,
                 domain_epoch: str = "fixed", **options: Any) -> DataLoader:
    """Shuffled batches of the union of ``parts`` from a generator seeded by ``seed``;
    ``by_domain``: [part A | part B] batches, epochs ending as ``domain_epoch`` says
    (:mod:`dgbench.data.samplers`)."""
    data, gen = concat(parts), torch.Generator().manual_seed(seed)
    if by_domain:
        sampler = DOMAIN_SAMPLERS[domain_epoch]([len(p) for p in parts], batch_size, gen)
        return DataLoader(data, batch_sampler=sampler, generator=gen, **options)
    return DataLoader(data, batch_size=batch_size, shuffle=True,
                      drop_last=len(data) >= batch_size, generator=gen, **options)


def step_loader(parts: Sequence[Dataset], batch_size: int, seed: int, at: Sequence[int],
                **options: Any) -> DataLoader:
    """DomainBed's batches (:class:`~dgbench.data.samplers.StepSampler`): ``batch_size`` of
    each part per step, one pass per interval between the evaluation steps ``at``."""
    gen = torch.Generator().manual_seed(seed)
    sampler = StepSampler([len(p) for p in parts], batch_size, gen, at)
    return DataLoader(concat(parts), batch_sampler=sampler, generator=gen, **options)


def eval_loader(ds: Dataset, batch_size: int, **options: Any) -> DataLoader:
    """An in-order loader with its own generator: a DataLoader without one draws its worker
    seed from torch's global RNG on every pass, so evaluating (or not) would change the
    training run's random stream."""
    return DataLoader(ds, batch_size=batch_size, shuffle=False,
                      generator=torch.Generator().manual_seed(0), **options)


class ReadyBatches:
    """Hands the training loop ready tensors: each batch's images through ``transform`` (the
    image cache's batched augmentation, on the device) or moved by ``place``, labels on
    ``device``. ``place`` puts images on the device (channels_last where asked)."""

    def __init__(self, loader: Iterable, place: Callable[[torch.Tensor], torch.Tensor],
                 device: torch.device, transform: Callable[[Any], torch.Tensor] | None = None):
        self.loader, self.place, self.device, self.transform = loader, place, device, transform

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels, _ in self.loader:
            if self.transform is not None:
                images = self.transform(images)
            yield self.place(images), labels.to(self.device, non_blocking=True)

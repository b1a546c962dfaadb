"""Batch samplers for ``mix=crossdomain``: every batch is [domain A | domain B].

Two ways to end an epoch (``train.domain_epoch``):

- ``dassl``: as Dassl's ``RandomDomainSampler`` (and torchreid's, with cameras as domains),
  which EFDM's and MixStyle's published runs used: each batch draws two different domains at
  random and half a batch of each without replacement; the epoch ends as soon as a drawn
  domain has fewer images left than half a batch. Its length varies with the draw (about 34 /
  34 / 41 / 34 batches of 128 for PACS targets art / cartoon / photo / sketch).
- ``fixed``: ``len(dataset) // batch`` batches, the pairs drawn in shuffled rounds so that
  every domain appears every ``ceil(domains / 2)`` batches.

Both draw from the run's seeded torch generator (Dassl draws from Python's ``random``).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from dgbench.core.errors import DataError


class _PairSampler(Sampler[list[int]]):
    """Batches of ``ceil(batch / 2)`` items of one domain then ``floor(batch / 2)`` of
    another: [A | B], the layout ``mix=crossdomain`` pairs across. Indices are into the
    concatenation of the domains, in the order of ``domain_sizes``."""

    def __init__(self, domain_sizes: Sequence[int], batch_size: int, generator: torch.Generator):
        if len(domain_sizes) < 2:
            raise DataError("mix=crossdomain needs at least two source domains")
        if batch_size < 2:
            raise DataError("mix=crossdomain needs a batch of at least 2")
        self.offsets = np.cumsum([0, *domain_sizes])[:-1].tolist()
        self.sizes = list(domain_sizes)
        self.half_a, self.half_b = (batch_size + 1) // 2, batch_size // 2
        self.generator = generator


class DomainPairSampler(_PairSampler):
    """Fixed-length epochs (``train.domain_epoch=fixed``): ``len(dataset) // batch`` batches,
    never depending on the draw. The pairs come from shuffled rounds over the domains, so
    every source domain appears within every ``ceil(domains / 2)`` batches; each domain's
    indices are reshuffled whenever they run out."""

    def __init__(self, domain_sizes: Sequence[int], batch_size: int, generator: torch.Generator):
        super().__init__(domain_sizes, batch_size, generator)
        self.num_batches = max(1, sum(domain_sizes) // batch_size)
        self._pools: list[list[int]] = [[] for _ in domain_sizes]
        self._rounds: list[int] = []

    def __len__(self) -> int:
        return self.num_batches

    def state_dict(self) -> dict[str, Any]:
        """What carries from one epoch to the next: the leftover index pools and rounds."""
        return {"pools": [list(p) for p in self._pools], "rounds": list(self._rounds)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pools = [list(p) for p in state["pools"]]
        self._rounds = list(state["rounds"])

    def _take(self, d: int, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            if not self._pools[d]:
                order = torch.randperm(self.sizes[d], generator=self.generator)
                self._pools[d] = (order + self.offsets[d]).tolist()
            k = n - len(out)
            out += self._pools[d][:k]
            self._pools[d] = self._pools[d][k:]
        return out

    def _pair(self) -> list[int]:
        picked: list[int] = []
        while len(picked) < 2:
            if not self._rounds:
                self._rounds = torch.randperm(len(self.sizes), generator=self.generator).tolist()
            d = self._rounds.pop(0)
            if d in picked:  # a new round began with the domain just taken: use it later
                self._rounds.append(d)
                continue
            picked.append(d)
        return picked

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.num_batches):
            a, b = self._pair()
            yield self._take(a, self.half_a) + self._take(b, self.half_b)


class DasslDomainSampler(_PairSampler):
    """Dassl's epoch (``train.domain_epoch=dassl``): without replacement within the epoch,
    ended by the first drawn domain with fewer than half a batch left. Each epoch is drawn
    when it starts; ``len()`` is the length of one epoch drawn from a copy of the generator
    (its state is not touched: an estimate, for progress bars)."""

    def __init__(self, domain_sizes: Sequence[int], batch_size: int, generator: torch.Generator):
        super().__init__(domain_sizes, batch_size, generator)
        small = [i for i, n in enumerate(domain_sizes) if n < self.half_a]
        if small:
            raise DataError(f"train.domain_epoch=dassl needs at least {self.half_a} images in "
                            f"every domain (half a batch); domain #{small[0]} has "
                            f"{domain_sizes[small[0]]}: lower data.batch_size")
        probe = torch.Generator().manual_seed(0)
        probe.set_state(generator.get_state())
        self._length = len(self._plan(probe))

    def _plan(self, generator: torch.Generator) -> list[list[int]]:
        pools = [(torch.randperm(n, generator=generator) + off).tolist()
                 for n, off in zip(self.sizes, self.offsets)]
        batches = []
        while True:
            a, b = torch.randperm(len(self.sizes), generator=generator)[:2].tolist()
            batch = pools[a][:self.half_a] + pools[b][:self.half_b]
            del pools[a][:self.half_a], pools[b][:self.half_b]
            batches.append(batch)
            if len(pools[a]) < self.half_a or len(pools[b]) < self.half_a:
                return batches

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._plan(self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {}  # nothing carries from one epoch to the next but the loader's generator

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


DOMAIN_SAMPLERS = {"fixed": DomainPairSampler, "dassl": DasslDomainSampler}


def evaluation_steps(steps: int, every: int, last: bool) -> list[int]:
    """The (0-based) steps after which DomainBed's ``train.py`` evaluates: every ``every``-th
    (step 0 first), and (``last``: HEAD's ``step == n_steps - 1``) the last one."""
    at = list(range(0, steps, every))
    if last and at[-1] != steps - 1:
        at.append(steps - 1)
    return at


class StepSampler(Sampler[list[int]]):
    """DomainBed's training batches: at every step ``batch_size`` items of each source domain,
    drawn uniformly with replacement (its ``InfiniteDataLoader`` over
    ``RandomSampler(replacement=True)``), concatenated in the sources' order. One pass of
    this sampler is one interval between evaluations: round ``k`` (:meth:`set_round`) trains
    the steps up to the k-th evaluation step of ``at``."""

    def __init__(self, domain_sizes: Sequence[int], batch_size: int, generator: torch.Generator,
                 at: Sequence[int]):
        if min(domain_sizes) < 1:
            raise DataError("every training domain needs at least one image")
        self.offsets = np.cumsum([0, *domain_sizes])[:-1].tolist()
        self.sizes, self.batch_size, self.generator = list(domain_sizes), batch_size, generator
        self.lengths = [at[0] + 1, *(b - a for a, b in zip(at, at[1:]))]
        self.round = 0

    def set_round(self, k: int) -> None:
        self.round = k

    def __len__(self) -> int:
        return self.lengths[self.round]

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(len(self)):
            yield [int(off) + int(i) for off, n in zip(self.offsets, self.sizes)
                   for i in torch.randint(n, (self.batch_size,), generator=self.generator)]

    def state_dict(self) -> dict[str, Any]:
        return {"round": self.round}  # the draws are the loader's generator's

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.round = state["round"]

"""The embedded digits dataset, the domain-pair sampler and the LODO protocol."""

from __future__ import annotations

import pytest
import torch

from dgbench.data import DomainPairSampler
from dgbench.errors import ConfigError, DataError
from dgbench.registry import DATASETS, PROTOCOLS


@pytest.fixture(scope="module")
def digits():
    return DATASETS.get("digits")(None, 32)


def test_digits_domains_are_disjoint_balanced_and_complete(digits):
    assert digits.domains == ("plain", "photo", "color", "inverted")
    assert len(digits.labels) == 1797  # every scikit-learn digit, each in exactly one domain
    counts = torch.bincount(digits.domain, minlength=4)
    assert counts.sum() == 1797 and counts.min() >= 440
    for d in range(4):
        per_class = torch.bincount(digits.labels[digits.domain == d], minlength=10)
        assert per_class.min() >= 40  # stratified: every class in every domain
        val_share = (digits.split[digits.domain == d] == 1).float().mean()
        assert 0.18 < val_share < 0.22


def test_digits_splits_partition_each_domain(digits):
    for domain in digits.domains:
        n_train = len(digits.subset(domain, "train", train=True))
        n_val = len(digits.subset(domain, "val", train=False))
        assert n_train + n_val == len(digits.subset(domain, "all", train=False))
    image, label, d = digits.subset("photo", "val", train=False)[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and d == 1
    assert -1.0 <= image.min() and image.max() <= 1.0 and 0 <= label <= 9


def test_digits_domains_look_different(digits):
    stats = []
    for d in range(4):
        imgs = digits.images[digits.domain == d].float() / 255
        stats.append((imgs.mean().item(), imgs.std(dim=1).mean().item()))  # brightness, colourfulness
    plain, photo, color, inverted = stats
    assert inverted[0] > plain[0] + 0.4  # dark-on-light vs light-on-dark
    assert plain[1] < 1e-6 and inverted[1] < 1e-6  # grey
    assert photo[1] > 0.03 and color[1] > 0.05  # coloured


def test_digits_cache_is_deterministic_and_rebuilt_when_damaged(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("DGBENCH_CACHE", str(tmp_path))
    again = DATASETS.get("digits")(None, 32)
    assert again.describe()["images_sha256_16"] == digits.describe()["images_sha256_16"]
    cache = next(tmp_path.glob("digits-*.npz"))
    cache.write_bytes(b"not an npz")
    rebuilt = DATASETS.get("digits")(None, 32)
    assert rebuilt.describe()["images_sha256_16"] == digits.describe()["images_sha256_16"]
    assert not list(tmp_path.glob("*.tmp"))


def test_digits_refuses_unusable_sizes():
    with pytest.raises(DataError, match="16..128"):
        DATASETS.get("digits")(None, 8)


def test_digits_train_transform_shifts(digits):
    torch.manual_seed(0)
    ds_train = digits.subset("plain", "train", train=True)
    ds_eval = digits.subset("plain", "train", train=False)
    shifted = [not torch.equal(ds_train[i][0], ds_eval[i][0]) for i in range(20)]
    assert any(shifted)


def test_lodo_splits(digits):
    splits = PROTOCOLS.get("lodo")().select(digits, None)
    assert [s.name for s in splits] == list(digits.domains)
    for s in splits:
        assert s.name not in s.sources and len(s.sources) == 3
        assert s.test == {s.name: (s.name, "all")}
        assert {d for d, _ in s.train} == set(s.sources) == {d for d, _ in s.val}
    chosen = PROTOCOLS.get("lodo")().select(digits, ["color", "plain"])
    assert [s.name for s in chosen] == ["color", "plain"] and chosen[1].index == 0
    with pytest.raises(ConfigError):
        PROTOCOLS.get("lodo")().select(digits, ["sketch"])


@pytest.mark.parametrize("batch", [8, 7])
def test_domain_pair_sampler_layout(batch):
    sizes = [10, 25, 7]
    offsets = [0, 10, 35]
    domain_of = lambda i: max(d for d, o in enumerate(offsets) if i >= o)
    sampler = DomainPairSampler(sizes, batch, torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert len(batches) == len(sampler) == sum(sizes) // batch
    n_a = (batch + 1) // 2
    for b in batches:
        assert len(b) == batch and all(0 <= i < sum(sizes) for i in b)
        first, second = {domain_of(i) for i in b[:n_a]}, {domain_of(i) for i in b[n_a:]}
        assert len(first) == 1 and len(second) == 1 and first != second


@pytest.mark.parametrize("n_domains", [2, 3, 5])
def test_domain_pair_sampler_uses_every_source_each_epoch(n_domains):
    sizes = [6] * n_domains
    batch = 4
    for seed in range(20):
        sampler = DomainPairSampler(sizes, batch, torch.Generator().manual_seed(seed))
        used = {i // 6 for b in sampler for i in b}
        assert used == set(range(n_domains)), f"seed {seed}: an epoch missed a domain"


def test_domain_pair_sampler_is_seeded_and_refuses_one_domain():
    a = list(DomainPairSampler([5, 5], 4, torch.Generator().manual_seed(3)))
    b = list(DomainPairSampler([5, 5], 4, torch.Generator().manual_seed(3)))
    assert a == b
    with pytest.raises(DataError, match="two source domains"):
        DomainPairSampler([5], 4, torch.Generator())

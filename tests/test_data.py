"""The embedded digits dataset, the domain-pair sampler and the LODO protocol."""

from __future__ import annotations

import pytest
import torch

from dgbench.data.samplers import DasslDomainSampler, DomainPairSampler
from dgbench.core.errors import ConfigError, DataError
from dgbench.data.base import DATASETS
from dgbench.data.protocols import PROTOCOLS


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


def test_dassl_epoch_layout_without_replacement_and_its_end():
    sizes, batch = [30, 20, 45], 8
    gen = torch.Generator().manual_seed(0)
    sampler = DasslDomainSampler(sizes, batch, gen)
    state = gen.get_state()
    estimate = len(sampler)  # from a copy of the generator: its state is untouched
    assert torch.equal(gen.get_state(), state) and estimate >= 1
    offsets = [0, 30, 50]
    lengths = set()
    for _ in range(20):
        batches = list(sampler)
        lengths.add(len(batches))
        flat = [i for b in batches for i in b]
        assert len(flat) == len(set(flat))  # without replacement within the epoch
        remaining = list(sizes)
        for k, b in enumerate(batches):
            doms = [next(d for d in reversed(range(3)) if i >= offsets[d]) for i in b]
            a, c = doms[0], doms[-1]
            assert a != c and doms == [a] * 4 + [c] * 4  # [A | B], two different domains
            remaining[a] -= 4
            remaining[c] -= 4
            ended = remaining[a] < 4 or remaining[c] < 4
            assert ended == (k == len(batches) - 1)  # it ends at the first short domain
    assert len(lengths) > 1  # the epoch's length depends on the draw


@pytest.mark.parametrize("target,sources,published", [
    ("art", (2107, 1499, 3530), 34), ("cartoon", (1840, 1499, 3530), 34),
    ("photo", (1840, 2107, 3530), 41), ("sketch", (1840, 2107, 1499), 34)])
def test_dassl_epochs_on_pacs_are_as_long_as_published(target, sources, published):
    """PACS LODO with 2 x 64 images per batch: about 34 / 34 / 41 / 34 batches per epoch (the
    published runs' epoch, against 55 / 53 / 58 / 42 for len(train) // 128)."""
    sampler = DasslDomainSampler(list(sources), 128, torch.Generator().manual_seed(1))
    lengths = [len(list(sampler)) for _ in range(300)]
    assert abs(sum(lengths) / len(lengths) - published) < 1.5
    assert len(DomainPairSampler(list(sources), 128, torch.Generator())) == sum(sources) // 128


def test_dassl_epoch_needs_half_a_batch_in_every_domain():
    with pytest.raises(DataError, match="at least 4 images in every domain"):
        DasslDomainSampler([30, 3], 8, torch.Generator())


@pytest.mark.parametrize("layout", ["domainbed", "images+splits"])
def test_pacs_leaves_hidden_files_out(tmp_path, layout):
    """macOS's ``._`` companions, ``.DS_Store`` and hidden folders are no images: a DomainBed
    layout does not scan them, ``dgbench data`` does not count them as unlisted files, and
    the download's content digest does not see them."""
    import warnings

    from test_pacs import make_tree

    from dgbench.data.base import list_files
    from dgbench.datasets.pacs import PACS, content_digests, find_layout

    root = make_tree(tmp_path / "PACS", layout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the DomainBed fallback split warns
        clean = PACS(str(root), 16)
        digests = content_digests(find_layout(str(root)))
        images = clean.layout.images
        for folder in (images / "photo" / "dog", images / "sketch" / "horse"):
            (folder / "._img_0.jpg").write_bytes(b"\x00\x05\x16\x07 fork")
            (folder / ".DS_Store").write_bytes(b"")
            (folder / ".thumbs").mkdir()
            (folder / ".thumbs" / "img_0.jpg").write_bytes(b"")
        dirty = PACS(str(root), 16)
        assert dirty.splits == clean.splits
        assert dirty.inventory() == clean.inventory()
        assert content_digests(find_layout(str(root))) == digests
    assert [p.name for p in list_files(images / "photo" / "dog", "*")] == \
        [f"img_{i}.jpg" for i in range(4)]

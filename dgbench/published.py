"""Published PACS numbers (mean ± std over 5 seeds, %): EFDM (Zhang et al., CVPR 2022; its
leave-one-domain-out and single-source tables, MixStyle as run by EFDM beside EFDMix) and
MixStyle (Zhou et al., ICLR 2021; its domain-label LODO row).

Keys: (dataset, protocol, backbone, augmenter, mix). LODO columns are target domains; single-
source columns are source domains, each the accuracy pooled over the other three domains.
"""

from __future__ import annotations

from typing import NamedTuple

COLUMNS = ("Art", "Cartoon", "Photo", "Sketch")


class Published(NamedTuple):
    source: str
    cells: dict[str, tuple[float, float]]  # column -> (mean, std)
    avg: float


def _row(source: str, *values: float) -> Published:
    *pairs, avg = values
    cells = {c: (pairs[2 * i], pairs[2 * i + 1]) for i, c in enumerate(COLUMNS)}
    return Published(source, cells, avg)


EFDM = "EFDM paper (Zhang et al., CVPR 2022)"
PUBLISHED: dict[tuple[str, str, str, str, str], list[Published]] = {
    ("pacs", "lodo", "resnet18", "mixstyle", "crossdomain"): [
        _row(f"{EFDM}, MixStyle as run by EFDM", 83.1, 0.8, 78.6, 0.9, 95.9, 0.4, 74.2, 2.7, 82.9),
        _row("MixStyle paper (Zhou et al., ICLR 2021), domain label",
             84.1, 0.4, 78.8, 0.4, 96.1, 0.3, 75.9, 0.9, 83.7),
    ],
    ("pacs", "lodo", "resnet18", "efdmix", "crossdomain"): [
        _row(EFDM, 83.9, 0.4, 79.4, 0.7, 96.8, 0.4, 75.0, 0.7, 83.9)],
    ("pacs", "lodo", "resnet50", "mixstyle", "crossdomain"): [
        _row(f"{EFDM}, MixStyle as run by EFDM", 90.3, 0.3, 82.3, 0.7, 97.7, 0.4, 74.7, 0.7, 86.2)],
    ("pacs", "lodo", "resnet50", "efdmix", "crossdomain"): [
        _row(EFDM, 90.6, 0.3, 82.5, 0.7, 98.1, 0.2, 76.4, 1.2, 86.9)],
    ("pacs", "single", "resnet18", "mixstyle", "random"): [
        _row(EFDM, 61.9, 2.2, 71.5, 0.8, 41.2, 1.8, 32.2, 4.1, 51.7)],
    ("pacs", "single", "resnet18", "efdmix", "random"): [
        _row(EFDM, 63.2, 2.3, 73.9, 0.7, 42.5, 1.8, 38.1, 3.7, 54.4)],
    ("pacs", "single", "resnet50", "mixstyle", "random"): [
        _row(EFDM, 73.2, 1.1, 74.8, 1.1, 46.0, 2.0, 40.6, 2.0, 58.6)],
    ("pacs", "single", "resnet50", "efdmix", "random"): [
        _row(EFDM, 75.3, 0.9, 77.4, 0.8, 48.0, 0.9, 44.2, 2.4, 61.2)],
}


def lookup(config: dict) -> list[Published]:
    """Published rows for a run config (a record's ``config``), or []."""
    key = (
        config["data"]["name"], config["protocol"]["name"], config["model"]["backbone"],
        config["aug"]["names"][0], config["aug"]["args"].get("mix", ""),
    )
    return PUBLISHED.get(key, [])

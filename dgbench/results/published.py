"""Published numbers, each with the recipe that produced it, for ``dgbench table --compare-paper``.

PACS (mean ± std over 5 seeds, %): EFDM (Zhang et al., CVPR 2022; its leave-one-domain-out and
single-source tables, MixStyle as run by EFDM beside EFDMix), MixStyle (Zhou et al., ICLR 2021;
its domain-label LODO row) and the ReScience C reproduction of EFDM (DOI
10.5281/zenodo.8173652; averages only). Re-identification (mAP / Rank-1, %): EFDM's OSNet
Market-1501 <-> GRID rows (GRID split 0; GRID -> Market-1501 "3 runs" of split 0) and
MixStyle's ResNet-50 Market-1501 <-> DukeMTMC-reID rows (dgbench has no DukeMTMC-reID loader:
listed for completeness).

A published row is compared with ours only when our runs used its recipe on every key that
changes the result (:data:`Published.recipe`, dotted config keys: the whole dataset, no
``data.subsample``, and the published weights, no local ``model.weights``, among them) and its
selection rule; otherwise the table says which keys differ and prints no difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dgbench.core import keys

PACS_COLUMNS = ("Art", "Cartoon", "Photo", "Sketch")


@dataclass(frozen=True)
class Published:
    source: str
    cells: dict[str, tuple[float, float | None]]  # table column -> (mean, std or None)
    avg: float | None
    recipe: dict[str, Any]  # dotted config keys of the published recipe
    select: str = "last"  # the selection rule of the published number
    splits: tuple[str, ...] | None = None  # the only splits its runs trained on, when it says
    note: str = ""


def _pacs(source: str, recipe: dict[str, Any], *values: float, note: str = "") -> Published:
    *pairs, avg = values
    cells = {c: (pairs[2 * i], pairs[2 * i + 1]) for i, c in enumerate(PACS_COLUMNS) if pairs}
    return Published(source, cells, avg, recipe, note=note)


#: keys every published recipe leaves unset: the whole dataset, the published weights
_UNSET = {"data.subsample": None, "model.weights": None}
_COMMON = {**_UNSET, "model.pretrained": True, "model.width": 64, "model.stem": "imagenet",
           "data.image_size": 224, "train.lr": 0.001, "train.momentum": 0.9,
           "train.weight_decay": 0.0005, "train.schedule": "cosine", "aug.args.alpha": 0.1,
           "aug.args.p": 0.5}
LODO = {**_COMMON, "train.epochs": 150, "data.batch_size": 128, "train.sampler": "domain",
        "train.domain_epoch": "dassl"}
LODO_R18 = {**LODO, "aug.insert": ["layer1", "layer2", "layer3"]}
LODO_R50 = {**LODO, "aug.insert": ["layer1", "layer2"]}
SINGLE = {**_COMMON, "train.epochs": 50, "data.batch_size": 64, "train.sampler": "random",
          "aug.insert": ["layer1", "layer2", "layer3"]}
EFDM = "EFDM paper (Zhang et al., CVPR 2022)"
RESCIENCE = "ReScience C reproduction of EFDM (zenodo 8173652), Avg only"
MIXSTYLE = "MixStyle paper (Zhou et al., ICLR 2021)"

# (dataset, protocol, target dataset, backbone, augmenter, mix) -> rows
PUBLISHED: dict[tuple[str, str, str, str, str, str], list[Published]] = {
    ("pacs", "lodo", "", "resnet18", "mixstyle", "crossdomain"): [
        _pacs(f"{EFDM}, MixStyle as run by EFDM", LODO_R18,
              83.1, 0.8, 78.6, 0.9, 95.9, 0.4, 74.2, 2.7, 82.9),
        _pacs(f"{MIXSTYLE}, domain label", LODO_R18,
              84.1, 0.4, 78.8, 0.4, 96.1, 0.3, 75.9, 0.9, 83.7,
              note="its recipe taken as EFDM's table states it"),
    ],
    ("pacs", "lodo", "", "resnet18", "efdmix", "crossdomain"): [
        _pacs(EFDM, LODO_R18, 83.9, 0.4, 79.4, 0.7, 96.8, 0.4, 75.0, 0.7, 83.9),
        _pacs(RESCIENCE, LODO_R18, 81.3)],
    ("pacs", "lodo", "", "resnet50", "mixstyle", "crossdomain"): [
        _pacs(f"{EFDM}, MixStyle as run by EFDM", LODO_R50,
              90.3, 0.3, 82.3, 0.7, 97.7, 0.4, 74.7, 0.7, 86.2)],
    ("pacs", "lodo", "", "resnet50", "efdmix", "crossdomain"): [
        _pacs(EFDM, LODO_R50, 90.6, 0.3, 82.5, 0.7, 98.1, 0.2, 76.4, 1.2, 86.9)],
    ("pacs", "single", "", "resnet18", "mixstyle", "random"): [
        _pacs(EFDM, SINGLE, 61.9, 2.2, 71.5, 0.8, 41.2, 1.8, 32.2, 4.1, 51.7)],
    ("pacs", "single", "", "resnet18", "efdmix", "random"): [
        _pacs(EFDM, SINGLE, 63.2, 2.3, 73.9, 0.7, 42.5, 1.8, 38.1, 3.7, 54.4),
        _pacs(RESCIENCE, SINGLE, 53.7)],
    ("pacs", "single", "", "resnet50", "mixstyle", "random"): [
        _pacs(EFDM, SINGLE, 73.2, 1.1, 74.8, 1.1, 46.0, 2.0, 40.6, 2.0, 58.6)],
    ("pacs", "single", "", "resnet50", "efdmix", "random"): [
        _pacs(EFDM, SINGLE, 75.3, 0.9, 77.4, 0.8, 48.0, 0.9, 44.2, 2.4, 61.2)],
}

REID = {**_UNSET, "model.pretrained": True, "data.image_size": 256, "data.batch_size": 32,
        "train.epochs": 60, "train.lr": 0.05, "train.backbone_lr_mult": 0.2,
        "train.weight_decay": 1e-5, "train.schedule": "step", "train.step_epochs": [20, 40],
        "train.label_smoothing": 0.1, "aug.args.alpha": 0.1, "aug.args.p": 0.5}
OSNET = {**REID, "model.feature_dim": 512, "aug.insert": ["conv2", "conv3"]}
R50 = {**REID, "model.feature_dim": 512, "model.last_stride": 1, "aug.insert": ["layer1", "layer2"]}


def _reid(source: str, recipe: dict[str, Any], columns: str, mAP: float, r1: float,
          splits: tuple[str, ...] | None = None, note: str = "") -> Published:
    return Published(source, {f"{columns} mAP": (mAP, None), f"{columns} R1": (r1, None)}, None,
                     recipe, splits=splits, note=note)


for _aug, _m2g, _g2m in (("mixstyle", (33.8, 24.9), (4.9, 15.4)),
                         ("efdmix", (35.5, 26.7), (6.4, 19.9))):
    PUBLISHED[("market1501", "reid", "grid", "osnet_x1_0", _aug, "random")] = [
        _reid(f"{EFDM}, OSNet, GRID split 0", OSNET, "market1501->grid split 0", *_m2g)]
    PUBLISHED[("grid", "reid", "market1501", "osnet_x1_0", _aug, "random")] = [
        _reid(f"{EFDM}, OSNet, trained on GRID split 0, 3 runs", OSNET, "grid->market1501",
              *_g2m, splits=("grid->market1501#0",))]
for _aug, _mix, _m2d, _d2m in (("none", "", (19.3, 35.4), (20.4, 45.2)),
                               ("mixstyle", "random", (23.8, 42.2), (24.1, 51.5)),
                               ("mixstyle", "crossdomain", (23.4, 43.3), (24.7, 53.0))):
    for _src, _tgt, _v in (("market1501", "dukemtmcreid", _m2d), ("dukemtmcreid", "market1501", _d2m)):
        PUBLISHED[(_src, "reid", _tgt, "resnet50", _aug, _mix)] = [
            _reid(f"{MIXSTYLE}, ResNet-50", R50, f"{_src}->{_tgt}", *_v)]


def lookup(config: dict[str, Any]) -> list[Published]:
    """Published rows for a run config (a record's ``config``), or []."""
    key = (
        config["data"]["name"], config["protocol"]["name"], config["protocol"].get("target") or "",
        config["model"]["backbone"], config["aug"]["names"][0],
        config["aug"]["args"].get("mix", ""),
    )
    return PUBLISHED.get(key, [])


def recipe_differences(config: dict[str, Any], pub: Published, select: str,
                       splits: set[str] | None = None) -> list[str]:
    """Where our runs' config (and the table's selection rule and the splits the runs trained
    on) depart from the published recipe: "key: ours X, published Y" each; [] when alike."""
    out = []
    for key, want in pub.recipe.items():
        got = keys.get(config, key)
        if key == "train.domain_epoch" and got is None:  # records from before the key existed
            got = "fixed"
        if got != want and not (isinstance(got, (int, float)) and isinstance(want, (int, float))
                                and abs(got - want) <= 1e-12 * max(abs(want), 1)):
            out.append(f"{key}: ours {_said(got)}, published {_said(want)}")
    if select != pub.select:
        out.append(f"selection: ours {select}, published {pub.select}")
    if pub.splits is not None and splits and set(splits) != set(pub.splits):
        out.append(f"splits: ours {', '.join(sorted(splits))}, published {', '.join(pub.splits)}")
    return out


def _said(value: Any) -> str:
    """A recipe value as a difference names it; None (a key left unset) as ``unset``."""
    return "unset" if value is None else repr(value)

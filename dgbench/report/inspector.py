"""The feature-distribution inspector: what each augmenter does to a feature map's distribution.

A content and a style image go through a backbone up to a block; each augmenter then restyles
the content's feature map with the style's (lambda fixed at 0 where the augmenter mixes, the
style as the partner), and we compare, per channel, the output's empirical distribution with
the style's: mean, std, skewness, kurtosis, and the 1-Wasserstein distance. EFDM should match
the style exactly (W1 ~ 0, every moment), AdaIN only its mean and std, binned histogram
matching in between, closer to EFDM as ``bins`` grows.
"""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from PIL import Image, UnidentifiedImageError
from tabulate import tabulate
from torch import nn
from torchvision import transforms as T

from dgbench import config as C
from dgbench.augmenters import AUGMENTERS
from dgbench.core.errors import ConfigError, DataError
from dgbench.data.base import DATASETS, IMAGENET_MEAN, IMAGENET_STD
from dgbench.models.backbones import build_backbone
from dgbench.plan.augargs import augmenter_kwargs
from dgbench.plan.planner import resolve

STATS = ("mean", "std", "skew", "kurt")


@dataclass
class Spec:
    """One augmenter to inspect: ``hm:bins=8`` -> name hm, arguments {bins: 8}."""

    label: str
    name: str
    args: dict[str, Any]


def parse_specs(text: str) -> list[Spec]:
    """``adain,hm:bins=8,efdm`` -> specs; values are converted to the parameter's type."""
    specs = []
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        name, *pairs = item.split(":")
        AUGMENTERS.entry(name)  # unknown names fail here, with the list
        given = {}
        for pair in pairs:
            if "=" not in pair:
                raise ConfigError(f"--aug {item!r}: arguments look like hm:bins=8")
            key, value = pair.split("=", 1)
            if key in given:
                raise ConfigError(f"--aug {item!r} gives {key} twice; give it once")
            given[key] = C.CliText(value)
        kwargs = augmenter_kwargs(name, {name: given} if given else {}, [name])
        specs.append(Spec(item, name, kwargs))
    if not specs:
        raise ConfigError("--aug lists no augmenter")
    return specs


def channel_stats(feat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-channel mean, std, skewness and excess kurtosis of a (C, H, W) map: each (C,)."""
    flat = feat.flatten(1).double()
    mean = flat.mean(1)
    centred = flat - mean[:, None]
    var = centred.pow(2).mean(1)
    std = var.sqrt()
    safe = torch.where(std > 0, std, torch.ones_like(std))
    skew = torch.where(std > 0, centred.pow(3).mean(1) / safe**3, torch.zeros_like(std))
    kurt = torch.where(std > 0, centred.pow(4).mean(1) / safe**4 - 3.0, torch.zeros_like(std))
    return {"mean": mean, "std": std, "skew": skew, "kurt": kurt}


def wasserstein1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-channel 1-Wasserstein distance between two (C, H, W) maps' value distributions
    (equal sizes: the mean absolute difference of the sorted values)."""
    return (a.flatten(1).double().sort(1).values - b.flatten(1).double().sort(1).values).abs().mean(1)


def restyle(spec: Spec, content: torch.Tensor, style: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``spec``'s augmenter applied to ``content`` (C, H, W) with ``style`` as its partner."""
    cls = AUGMENTERS.get(spec.name)
    params = inspect.signature(cls).parameters
    kwargs = dict(spec.args)
    if "p" in params:
        kwargs["p"] = 1.0  # always fire
    if "mix" in params:
        kwargs["mix"] = "crossdomain"  # batch [content | style]: each is the other's partner
    aug = cls(**kwargs).train()
    if hasattr(aug, "weights"):  # the mixing ones: lambda = 0, the full style
        aug.weights = lambda batch, x: torch.zeros(batch, 1, 1, 1, device=x.device)
    torch.manual_seed(seed)
    with torch.no_grad():
        return aug(torch.stack([content, style]))[0]


def restyled(content: torch.Tensor, style: torch.Tensor, specs: list[Spec],
             seed: int = 0) -> dict[str, torch.Tensor]:
    """``content``, ``style`` and each spec's output, by label: the maps :func:`compare` and
    :func:`plot` read."""
    if content.shape != style.shape:
        raise DataError(f"content and style feature maps differ in shape: {tuple(content.shape)} "
                        f"vs {tuple(style.shape)}")
    maps = {"content": content, "style": style}
    maps.update({s.label: restyle(s, content, style, seed) for s in specs})
    return maps


def compare(maps: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Per map (see :func:`restyled`): per-channel stats, their absolute difference to the
    style's (``d_mean`` ...) and ``w1`` to the style; each (C,)."""
    style = maps["style"]
    target = channel_stats(style)
    rows = {}
    for label, feat in maps.items():
        stats = channel_stats(feat)
        row = dict(stats)
        row.update({f"d_{k}": (stats[k] - target[k]).abs() for k in STATS})
        row["w1"] = wasserstein1(feat, style)
        rows[label] = row
    return rows


def block_features(model: nn.Module, block: str, images: torch.Tensor) -> torch.Tensor:
    """The output of ``model``'s submodule ``block`` for ``images`` (eval mode)."""
    try:
        module = model.get_submodule(block)
    except AttributeError:
        names = [n for n, _ in model.named_children()]
        raise ConfigError(f"--block {block!r} is not a submodule; top-level ones: "
                          f"{', '.join(names)} (any name from print(model) works)") from None
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    try:
        model.eval()
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    if not captured or captured[0].dim() != 4:
        raise ConfigError(f"--block {block!r} gives no (B, C, H, W) feature map")
    return captured[0]


@dataclass
class Inspection:
    """What ``dgbench inspect`` found: the images used, the block's maps and their stats."""

    where: list[str]  # the content and the style image (a path, or "<domain> #<index>")
    block: str
    shape: tuple[int, ...]  # (C, H, W) of the block's output
    backbone: str
    weights: str  # which weights the backbone had
    maps: dict[str, torch.Tensor]
    rows: dict[str, dict[str, torch.Tensor]]

    def header(self) -> str:
        return (f"content: {self.where[0]}  style: {self.where[1]}  block: {self.block} "
                f"{self.shape}  backbone: {self.backbone} ({self.weights})")


def inspect_features(aug: str, dataset: str = "digits", data_root: str | None = None,
                     domains: str | None = None, content: str | None = None,
                     style: str | None = None, block: str = "layer1",
                     backbone: str | None = None, image_size: str | None = None,
                     pretrained: bool = False, weights: str | None = None,
                     seed: int = 0) -> Inspection:
    """Restyle a content image's features at ``block`` with each augmenter of ``aug``
    (``adain,hm:bins=8``) and compare them with the style's (see the module docstring).

    The images are ``content`` and ``style`` (paths), or sampled with ``seed`` from two
    ``domains`` of ``dataset``. The backbone has ImageNet weights when asked for or already
    downloaded, ``weights`` when given, else a seeded random initialisation (said in
    :attr:`Inspection.weights`).
    """
    specs = parse_specs(aug)
    user: dict[str, Any] = {"data.name": dataset}
    for key, value in (("model.backbone", backbone), ("data.image_size", image_size)):
        if value is not None:  # command-line text, converted and checked like run's flags
            C.set_value(user, key, value, from_text=True)
    cfg = resolve(user)
    pretrained = pretrained or (not weights and _pretrained_cached(cfg.model.backbone,
                                                                   cfg.model.width))
    ds = DATASETS.get(dataset)(data_root, cfg.data.image_size)
    images, where = (_read_images([content, style], cfg.data.image_size) if content or style
                     else _sample_images(ds, dataset, domains, seed))
    torch.manual_seed(seed)  # the initialisation too: the same seed gives the same figures
    model = build_backbone(cfg.model.backbone, max(ds.num_classes, 1), cfg.model.stem,
                           cfg.model.width, pretrained, weights)
    state = ("ImageNet weights" if pretrained else f"weights from {weights}" if weights
             else "UNTRAINED (random init, seeded): pass --pretrained or --weights for a trained one")
    feats = block_features(model, block, torch.stack(images))
    maps = restyled(feats[0], feats[1], specs, seed)
    return Inspection(where, block, tuple(feats.shape[1:]), cfg.model.backbone, state, maps,
                      compare(maps))


def _read_images(paths: list[str | None], size: int) -> tuple[list[torch.Tensor], list[str]]:
    if not all(paths):
        raise ConfigError("give both --content and --style image paths, or neither")
    tf = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    images = []
    for path in paths:
        try:
            with Image.open(path) as im:
                images.append(tf(im.convert("RGB")))
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot read image {path}: {exc}") from None
    return images, [str(p) for p in paths]


def _sample_images(ds: Any, name: str, domains: str | None,
                   seed: int) -> tuple[list[torch.Tensor], list[str]]:
    """One image of each of two domains (content first), drawn with ``seed``."""
    if not ds.domains:
        raise ConfigError(f"{name} has no named domains to sample images from: pass --content "
                          "and --style image paths (e.g. two of its image files)")
    chosen = domains.split(",") if domains is not None else list(ds.domains[:2])
    if len(chosen) != 2 or chosen[0] == chosen[1]:
        raise ConfigError("--domains takes two different domains, content first")
    rng = random.Random(seed)
    images, where = [], []
    for d in chosen:
        part = ds.subset(d, "all", train=False)
        i = rng.randrange(len(part))
        images.append(part[i][0])
        where.append(f"{d} #{i}")
    return images, where


def _pretrained_cached(backbone: str, width: int) -> bool:
    """Are torchvision's ImageNet weights for ``backbone`` already on disk (no download)?"""
    if width != 64 or backbone not in ("resnet18", "resnet50"):
        return False
    weights = getattr(torchvision.models, f"ResNet{backbone[6:]}_Weights").IMAGENET1K_V1
    return (Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[1]).is_file()


def render_rows(rows: dict[str, dict[str, torch.Tensor]], per_channel: bool = False) -> str:
    keys = [*STATS, *(f"d_{k}" for k in STATS), "w1"]
    heads = ["", *STATS, *(f"|{k} - style|" for k in STATS), "W1 to style"]
    body = [[label, *(f"{float(r[k].mean()):.4f}" for k in keys)] for label, r in rows.items()]
    text = ("Averaged over channels (skew and excess kurtosis per channel, then averaged):\n"
            + tabulate(body, heads, tablefmt="simple", disable_numparse=True))
    if per_channel:
        body = [[label, c, *(f"{float(r[k][c]):.4f}" for k in keys)]
                for label, r in rows.items() for c in range(len(r["mean"]))]
        text += "\n\nPer channel:\n" + tabulate(body, ["", "channel", *heads[1:]], tablefmt="simple",
                                               disable_numparse=True)
    return text + "\n"


def plot(maps: dict[str, torch.Tensor], rows: dict[str, dict[str, torch.Tensor]], path: str,
         channels: int = 4) -> None:
    """Per-channel histograms: one row per channel, one column per map (content, style, ...)."""
    try:
        import matplotlib  # lazy: matplotlib, an optional extra (plot)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # lazy: matplotlib
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'dgbench[plot]'") from None
    labels = list(maps)
    n = min(channels, maps["style"].shape[0])
    fig, axes = plt.subplots(n, len(labels), figsize=(2.6 * len(labels), 1.9 * n), squeeze=False)
    for c in range(n):
        values = torch.cat([maps[k][c].flatten() for k in labels])
        lo, hi = float(values.min()), float(values.max())
        for j, label in enumerate(labels):
            ax = axes[c][j]
            ax.hist(maps[label][c].flatten().numpy(), bins=40, range=(lo, hi if hi > lo else lo + 1),
                    color="tab:gray" if label in ("content", "style") else "tab:blue")
            if c == 0:
                ax.set_title(label, fontsize=9)
            if label not in ("content", "style"):
                ax.text(0.97, 0.9, f"W1 {float(rows[label]['w1'][c]):.3f}", transform=ax.transAxes,
                        ha="right", va="top", fontsize=7)
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
        axes[c][0].set_ylabel(f"channel {c}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

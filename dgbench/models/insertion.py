"""Augmenters inserted into a model as real child modules at named points.

An augmenter is appended to a stage (``layer2`` is an ``nn.Sequential``; the augmenter becomes
``layer2.efdmix``), so it runs on the stage's output, shows in ``print(model)``, follows
``model.eval()`` and ``.to()``, and leaves the backbone's state_dict keys unchanged: pretrained
weights load before or after insertion. Beside any other module it becomes that module's
child, run by a forward (pre-)hook.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Callable

from torch import nn

from dgbench.augmenters import AUGMENTERS
from dgbench.core.errors import ConfigError


def stage_names(model: nn.Module) -> list[str]:
    """Blocks an augmenter can be appended to: the model's top-level sequential stages."""
    return [name for name, child in model.named_children() if isinstance(child, nn.Sequential)]


def default_insert(model: nn.Module) -> list[str]:
    """The model's own ``default_points`` when it has them (OSNet: conv2, conv3); else after
    layer1-3 for BasicBlock ResNets (18/34), layer1-2 for Bottleneck ones (50+), as EFDM
    (Zhang et al., CVPR 2022) and MixStyle (Zhou et al., ICLR 2021) insert them."""
    if hasattr(model, "default_points"):
        return list(model.default_points)
    bottleneck = any(type(m).__name__ == "Bottleneck" for m in model.layer1.modules())
    return ["layer1", "layer2"] if bottleneck else ["layer1", "layer2", "layer3"]


POSITIONS = ("after", "before")


@dataclass(frozen=True)
class Point:
    """One insertion point: a module of the model and which side of it the augmenter runs."""

    module: str  # dotted name in model.named_modules()
    position: str  # "after" | "before"


def _candidates(model: nn.Module) -> list[str]:
    """Module names an augmenter may sit beside: everything but the root and augmenters."""
    aug_types = tuple(AUGMENTERS.get(n) for n in AUGMENTERS.names())
    return [n for n, m in model.named_modules() if n and not isinstance(m, aug_types)]


def _matches(pattern: str, name: str) -> bool:
    """Glob per dotted segment: ``layer*.*.conv1`` matches ``layer1.0.conv1``, not ``layer1``."""
    parts, segs = pattern.split("."), name.split(".")
    return len(parts) == len(segs) and all(fnmatchcase(s, p) for p, s in zip(parts, segs))


def resolve_points(model: nn.Module, specs: list[str]) -> list[Point]:
    """Turn ``aug.insert`` entries into concrete points, in model order within each entry.

    An entry is ``[after:|before:]NAME`` (``after`` by default); NAME is a submodule name
    (``layer1``, ``conv1``, ``layer2.0.bn1``) or a glob over dotted segments
    (``layer*.*.conv*``). Unknown names, patterns matching nothing and repeats are errors.
    """
    names = _candidates(model)
    points: list[Point] = []
    for spec in specs:
        position, _, pattern = spec.rpartition(":")
        position = position or "after"
        if position not in POSITIONS or not pattern:
            raise ConfigError(f"insertion point {spec!r}: write NAME, after:NAME or before:NAME "
                              "(NAME a submodule name or a glob such as layer*.*.conv1)")
        found = [n for n in names if _matches(pattern, n)]
        if not found:
            close = difflib.get_close_matches(pattern, names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(
                f"insertion point {spec!r} matches no module{hint}; stages: "
                f"{', '.join(stage_names(model))}; any name from print(model) or a glob works"
            )
        points += [Point(n, position) for n in found]
    seen: set[Point] = set()
    repeated = [f"{p.position}:{p.module}" for p in points if p in seen or seen.add(p)]
    if repeated:
        raise ConfigError(f"insertion points repeat: {', '.join(dict.fromkeys(repeated))}")
    return points


def check_insert(model: nn.Module, points: list[str]) -> None:
    """Refuse insertion points that match no module of ``model``, or that repeat."""
    resolve_points(model, points)


class _CallChild:
    """A forward (pre-)hook that runs the hooked module's child augmenter ``name``: a plain
    object, so models with it still deep-copy and pickle."""

    def __init__(self, name: str, before: bool) -> None:
        self.name, self.before = name, before

    def __call__(self, module: nn.Module, *args: Any) -> Any:
        aug = getattr(module, self.name)
        if self.before:  # (module, inputs) -> new inputs
            inputs = args[0]
            return (aug(inputs[0]), *inputs[1:])
        return aug(args[1])  # (module, inputs, output) -> new output


def insert_augmenters(
    model: nn.Module, points: list[str], make: Callable[[], nn.Module], name: str,
    shared: bool = False,
) -> list[str]:
    """Put an augmenter at every resolved point; return the augmenter modules' names.

    After a stage (an ``nn.Sequential``) the augmenter is appended to it (``layer2.efdmix``).
    Beside any other module it becomes that module's child (``conv1.efdmix``, or
    ``bn1.efdmix_before``) run by a forward hook, so it is still a real submodule: it shows in
    ``print(model)``, follows ``eval()`` and ``.to()``. Augmenters hold no parameters, so the
    model's state_dict keys never change. ``shared``: one instance at every point (as the
    official code), else a fresh one per point.
    """
    resolved = resolve_points(model, points)
    one = make() if shared else None
    placed = []
    for point in resolved:
        target = model.get_submodule(point.module)
        aug = one if shared else make()
        child = name if point.position == "after" else f"{name}_before"
        if hasattr(target, child):
            raise ConfigError(f"{point.module} already has a child named {child}")
        target.add_module(child, aug)
        if not (isinstance(target, nn.Sequential) and point.position == "after"):
            hook = _CallChild(child, before=point.position == "before")
            if point.position == "before":
                target.register_forward_pre_hook(hook)
            else:
                target.register_forward_hook(hook)
        placed.append(f"{point.module}.{child}")
    return placed

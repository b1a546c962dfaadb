"""Sweeps: a base config, axes whose product gives the points, and an optional hyperparameter
search; ``dgbench sweep FILE.yaml``.

```yaml
preset: efdm-pacs-lodo-r18        # optional: a preset, or `config: FILE.yaml`, as the base
base: {data.root: /data/PACS}     # optional: keys over it (dotted or nested)
axes:                             # each key's values; the points are their product
  model.backbone: [resnet18, resnet50]   # (an axis `preset: [a, b]` puts recipes side by side)
  aug.insert: [[layer1], [layer1, layer2, layer3]]
search:                           # optional: per augmenter, from its declared distributions
  kind: random                    # random (seeded, DomainBed-style) or grid
  samples: 8                      # random: samples per augmenter and point
  seed: 0
  points: 3                       # grid: values per continuous hyperparameter
  only: [alpha]                   # optional: which hyperparameters (default: all declared)
  distributions: {efdmix: {alpha: [log_uniform, 0.01, 1.0]}}  # optional overrides
```

Each augmenter declares its search space beside its defaults (``Augmenter.search``). A random
sample's value of a hyperparameter comes from a hash of (seed, sample, augmenter, name), so
adding a hyperparameter to the search does not move the others' values.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dgbench import config as C
from dgbench.augmenters import AUGMENTERS
from dgbench.core import keys
from dgbench.core.errors import ConfigError
from dgbench.core.files import read_yaml
from dgbench.plan.augargs import augmenter_arguments

KINDS = {"uniform": 2, "log_uniform": 2, "int_uniform": 2, "choice": 1}
TOP = ("preset", "config", "experiment", "base", "axes", "search")


@dataclass
class Search:
    kind: str = "random"
    samples: int = 8
    seed: int = 0
    points: int = 3
    only: list[str] | None = None
    distributions: dict[str, dict[str, list]] | None = None


def check_distribution(where: str, dist: Any) -> tuple[str, list]:
    """``[kind, *params]`` checked: a known kind, the right number of numbers, lo < hi."""
    if not isinstance(dist, (list, tuple)) or not dist or dist[0] not in KINDS:
        raise ConfigError(f"{where}: a distribution is [uniform|log_uniform|int_uniform, lo, hi] "
                          f"or [choice, [values]]; got {dist!r}")
    kind, params = dist[0], list(dist[1:])
    if len(params) != KINDS[kind]:
        raise ConfigError(f"{where}: {kind} takes {KINDS[kind]} parameter(s); got {params!r}")
    if kind == "choice":
        if not isinstance(params[0], list) or not params[0]:
            raise ConfigError(f"{where}: choice takes a non-empty list of values")
        return kind, params
    if not all(isinstance(p, (int, float)) and not isinstance(p, bool) and math.isfinite(p)
               for p in params) or not params[0] < params[1]:
        raise ConfigError(f"{where}: {kind} needs two finite numbers lo < hi; got {params!r}")
    if kind == "log_uniform" and params[0] <= 0:
        raise ConfigError(f"{where}: log_uniform needs lo > 0; got {params[0]}")
    return kind, params


def value(kind: str, params: list, u: float) -> Any:
    """The distribution's value at quantile ``u`` in [0, 1)."""
    if kind == "choice":
        return params[0][min(int(u * len(params[0])), len(params[0]) - 1)]
    lo, hi = params
    if kind == "log_uniform":
        return float(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))
    if kind == "int_uniform":
        return int(lo + min(int(u * (hi - lo + 1)), hi - lo))
    return float(lo + u * (hi - lo))


def _unit(*key: Any) -> float:
    """A uniform number in [0, 1) from a hash of ``key``."""
    digest = hashlib.sha256(":".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def search_space(aug: str, search: Search) -> dict[str, tuple[str, list]]:
    """The hyperparameters searched for ``aug``: its declared distributions, overridden by the
    sweep file's, kept to ``only``."""
    declared = dict(getattr(AUGMENTERS.get(aug), "search", {}) or {})
    declared.update((search.distributions or {}).get(aug, {}))
    space = {name: check_distribution(f"search distribution {aug}.{name}", dist)
             for name, dist in declared.items()}
    return {n: d for n, d in space.items() if search.only is None or n in search.only}


def samples(aug: str, search: Search) -> list[dict[str, Any]]:
    """The argument sets of ``aug`` the search tries (one empty set: nothing to search)."""
    space = search_space(aug, search)
    if not space:
        return [{}]
    if search.kind == "random":
        return [{name: value(*dist, _unit(search.seed, s, aug, name))
                 for name, dist in space.items()} for s in range(search.samples)]
    grids = {name: (dist[1][0] if dist[0] == "choice" else grid_values(*dist, search.points))
             for name, dist in space.items()}
    return [dict(zip(grids, combo)) for combo in itertools.product(*grids.values())]


def grid_values(kind: str, params: list, points: int) -> list[Any]:
    """``points`` values of a continuous or integer distribution, evenly spaced in its
    quantiles, from ``lo`` to ``hi`` exactly (the ends as written, never a rounding of them:
    a grid's ``p=1.0`` is 1.0, not 0.9999999999991); one point is ``lo``. Integers that
    coincide are listed once."""
    lo, hi = params
    cast = int if kind == "int_uniform" else float
    if points == 1:
        return [cast(lo)]
    inner = [value(kind, params, i / (points - 1)) for i in range(1, points - 1)]
    return list(dict.fromkeys([cast(lo), *inner, cast(hi)]))


@dataclass
class Sweep:
    base: dict[str, Any]  # checked dotted keys
    axes: dict[str, list[Any]]  # key -> checked values
    search: Search | None = None
    #: how a sweep line names an axis's values when not by the value itself (a preset axis:
    #: the presets' names)
    names: dict[str, list[str]] = field(default_factory=dict)

    def points(self) -> list[dict[str, Any]]:
        """One user config (checked dotted keys) per point of the axes and search sample."""
        return [flat for flat, _ in self.labelled_points()]

    def labelled_points(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """:meth:`points`, each with what it sweeps: axis key -> its value at the point (a
        preset axis: the preset's name; an ``aug.args`` axis: one ``aug.args.NAME`` key per
        argument) and ``aug.args.NAME`` -> each searched hyperparameter's value."""
        keys = list(self.axes)
        out: list[tuple[dict[str, Any], dict[str, Any]]] = []
        searched: set[str] = set()
        for combo in itertools.product(*(range(len(self.axes[k])) for k in keys)) if keys else [()]:
            point = {k: self.axes[k][i] for k, i in zip(keys, combo)}
            swept = _swept_at(point, {k: self.names[k][i] for k, i in zip(keys, combo)
                                      if k in self.names})
            flat = {**point.pop("preset", {}), **self.base}  # a preset axis: under the base
            for key, v in point.items():
                if key.startswith("aug.args."):  # one augmenter argument: merged into aug.args
                    flat["aug.args"] = C.merge_aug_args(flat.get("aug.args", {}), v)
                else:
                    flat[key] = v
            if self.search is None:
                out.append((flat, swept))
                continue
            for aug in flat.get("aug.names", C.FIELDS["aug.names"].default):
                searched.update(search_space(aug, Search(distributions=self.search.distributions)))
                for args in samples(aug, self.search):
                    out.append(({**flat, "aug.names": [aug],
                                 "aug.args": C.merge_aug_args(flat.get("aug.args", {}),
                                                              {aug: args} if args else {})},
                                {**swept, **{f"aug.args.{aug}.{k}": v for k, v in args.items()}}))
        unknown = sorted(set(self.search.only or []) - searched) if self.search else []
        if unknown:
            raise ConfigError(f"search.only names {', '.join(unknown)}, which no augmenter of the "
                              f"sweep declares; declared: {', '.join(sorted(searched)) or 'none'}")
        return out


def _swept_at(point: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """What a point of the axes sets, key by key, as :meth:`Sweep.labelled_points` says it."""
    swept: dict[str, Any] = {}
    for key, v in point.items():
        if key in names:
            swept[key] = names[key]
        elif key.startswith("aug.args"):  # the merged argument dict, maybe per augmenter
            for name, arg in v.items():
                inner = arg.items() if isinstance(arg, dict) else [(None, arg)]
                swept.update({".".join(filter(None, ("aug.args", name, sub))): x
                              for sub, x in inner})
        else:
            swept[key] = v
    return swept


#: swept keys a run's label shows already (its augmenter and seed)
IN_LABEL = ("aug.names", "seeds")


def run_values(swept: dict[str, Any], config: Any) -> dict[str, Any]:
    """The swept values a planned run (its resolved single-run ``config``) holds: an
    augmenter argument only where the run's augmenter takes it (``none`` has no ``alpha``),
    read from the run itself; keys its label already shows are left out."""
    values: dict[str, Any] = {}
    for key, v in swept.items():
        if key in IN_LABEL:
            continue
        if key.startswith("aug.args."):
            *aug, name = key.split(".")[2:]
            if (aug and aug[0] != config.aug.names[0]) or name not in config.aug.args:
                continue
            values[key] = config.aug.args[name]
        else:
            values[key] = v if key == "preset" else keys.get(config, key)
    return values


def short(v: Any) -> str:
    """A value as sweep lines show it: floats to 3 significant digits, lists comma-joined."""
    if isinstance(v, float):
        text = f"{v:.3g}"
        return text if any(c in text for c in ".en") else text + ".0"  # 1.0, not 1
    if isinstance(v, (list, tuple)):
        return ",".join(map(short, v))
    return str(v)


def describe(values: dict[str, Any]) -> str:
    """``alpha=0.3 insert=layer1,layer2``: each key by its last part, or whole where two
    would read alike."""
    tails = [k.rsplit(".", 1)[-1] for k in values]
    return " ".join(f"{tail if tails.count(tail) == 1 else key}={short(v)}"
                    for key, tail, v in zip(values, tails, values.values()))


def read_sweep(path: str | Path, overrides: dict[str, Any] | None = None) -> Sweep:
    """A sweep file, every key and value checked (nothing is planned yet); ``overrides``
    (checked dotted keys, from the command line) go over its base. Every error names the
    file."""
    return C.in_file(path, lambda: _read_sweep(path, overrides))


def _read_sweep(path: str | Path, overrides: dict[str, Any] | None) -> Sweep:
    tree = read_yaml(path, "sweep file")
    if not isinstance(tree, dict):
        raise ConfigError(f"{path} must be a mapping of {', '.join(TOP)}")
    unknown = [k for k in tree if k not in TOP]
    if unknown:
        raise ConfigError(f"{path}: unknown sweep key {unknown[0]!r}; a sweep has {', '.join(TOP)}")
    if not tree:
        raise ConfigError(f"{path} is empty; a sweep has {', '.join(TOP)} (see the README)")
    for key in ("preset", "config"):
        if key in tree and (not isinstance(tree[key], str) or not tree[key].strip()):
            raise ConfigError(f"{path}: {key} must name a {'preset' if key == 'preset' else 'file'}"
                              f"; got {tree[key]!r}")
    for key in ("base", "axes", "search"):
        if tree.get(key) is not None and not isinstance(tree[key], dict):
            raise ConfigError(f"{path}: {key} must be a mapping (key: value lines); got "
                              f"{type(tree[key]).__name__}")
    base = C.read_preset(tree["preset"]) if tree.get("preset") else (
        C.read_yaml(tree["config"]) if tree.get("config") else {})
    for key, v in C.flatten_yaml(tree.get("base") or {}).items():
        C.set_value(base, key, v, from_text=False)
    if tree.get("experiment") is not None:
        C.set_value(base, "experiment", tree["experiment"], from_text=False)
    for key, v in (overrides or {}).items():
        base[key] = C.merge_aug_args(base.get(key, {}), v) if key == "aug.args" else v
    axes, names = {}, {}
    for key, values in (tree.get("axes") or {}).items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: axis {key!r} must list at least one value")
        if key == "preset":  # published recipes side by side (R18 and R50 differ in insertion)
            if tree.get("preset") or tree.get("config"):
                raise ConfigError(f"{path}: a preset axis replaces the top-level preset/config; "
                                  "give one or the other")
            axes[key] = [C.read_preset(str(v)) for v in values]
            names[key] = [str(v) for v in values]
            continue
        axes[key] = [_checked(key, v) for v in values]
        twice = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if twice is not None:
            raise ConfigError(f"{path}: axis {key!r} lists {twice!r} twice; give each value once")
    return Sweep(base, axes, _search(path, tree.get("search")), names)


def _checked(key: str, v: Any) -> Any:
    flat: dict[str, Any] = {}
    if key in C.FIELDS and isinstance(C.FIELDS[key].default, list) and not isinstance(v, list):
        v = [v]  # one value of a list-valued key
    C.set_value(flat, key, v, from_text=False)  # unknown keys and wrong types: errors
    return flat["aug.args"] if key.startswith("aug.args.") else flat[key]


def _search(path: str | Path, tree: Any) -> Search | None:
    if tree is None:
        return None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: search must be a mapping")
    fields = set(Search.__dataclass_fields__)
    unknown = [k for k in tree if k not in fields]
    if unknown:
        raise ConfigError(f"{path}: unknown search key {unknown[0]!r} ({', '.join(sorted(fields))})")
    search = Search(**tree)
    if search.kind not in ("random", "grid"):
        raise ConfigError(f"{path}: search.kind must be random or grid; got {search.kind!r}")
    for name in ("samples", "points", "seed"):
        v, least = getattr(search, name), 0 if name == "seed" else 1
        if not isinstance(v, int) or isinstance(v, bool) or v < least:
            raise ConfigError(f"{path}: search.{name} must be an integer >= {least}; got {v!r}")
    if search.only is not None and (not isinstance(search.only, list) or not search.only
                                    or not all(isinstance(n, str) for n in search.only)):
        raise ConfigError(f"{path}: search.only must list hyperparameter names, e.g. [alpha]; "
                          f"got {search.only!r}")
    _check_distributions(path, search.distributions)
    return search


def _check_distributions(path: str | Path, tree: Any) -> None:
    """``distributions: {augmenter: {argument: [kind, ...]}}``: registered augmenters, their
    own arguments, well-formed distributions."""
    if tree is None:
        return
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: search.distributions must map augmenters to "
                          "{argument: distribution}")
    for aug, dists in tree.items():
        AUGMENTERS.get(aug)  # an unknown augmenter: an error with the known ones
        if not isinstance(dists, dict):
            raise ConfigError(f"{path}: search.distributions.{aug} must map {aug}'s arguments "
                              f"to distributions; got {dists!r}")
        known = augmenter_arguments(aug)
        for name, dist in dists.items():
            if name not in known:
                raise ConfigError(f"{path}: search distribution {aug}.{name}: {aug} has no "
                                  f"argument {name!r}; its arguments: {', '.join(known)}")
            check_distribution(f"{path}: search distribution {aug}.{name}", dist)

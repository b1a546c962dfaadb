"""Typed, strict configuration: dataclasses with defaults, YAML files and dotted overrides.

Precedence, lowest first: the dataclass defaults below, the chosen dataset's recommended
settings (``DomainDataset.defaults``), a YAML file (``--config``), then CLI flags and
``key=value`` overrides. Unknown keys and wrong types are errors. YAML values are checked as
they are (PyYAML reads ``lr: 5e-5`` as a *string*, which is refused); values typed on the
command line are text and are converted to the field's type.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from dgbench.errors import ConfigError


@dataclass
class DataConfig:
    name: str = "digits"  # registered dataset
    root: str | None = None  # where the dataset lives (datasets that need files)
    image_size: int = 224
    batch_size: int = 64  # total batch; with mix=crossdomain half comes from each domain
    num_workers: int = 0
    subsample: int | None = None  # at most N images per (domain, split): smoke tests only
    cache: bool = True  # decoded-image cache + batched augmentation (datasets that support it)


@dataclass
class ModelConfig:
    backbone: str = "resnet18"  # registered backbone, or "timm:<name>"
    stem: str = "imagenet"  # imagenet (7x7/2 conv + pool) | nopool (no pool) | small (3x3/1)
    width: int = 64  # base channel width of a torchvision ResNet (64 = standard)
    pretrained: bool = False  # torchvision / timm ImageNet weights (downloads)
    weights: str | None = None  # local checkpoint; its classifier is replaced
    feature_dim: int = 512  # reid: the fc + BN + ReLU neck's width (the retrieval feature)
    last_stride: int = 1  # reid: stride of layer4 (1 keeps a 16x8 map at 256x128)


@dataclass
class AugConfig:
    names: list[str] = field(default_factory=lambda: ["none"])  # one run per augmenter
    # where: [after:|before:]NAME, NAME a submodule or a glob (layer*.*.conv1); None: the
    # backbone's default stages
    insert: list[str] | None = None
    shared: bool = False  # one instance at every point (official code) or one per point
    # keyword arguments: {alpha: 0.3} for every augmenter that takes it, or per augmenter
    # {mixstyle: {alpha: 0.3}}
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    epochs: int = 50
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "cosine"  # cosine | step | constant; set from training progress every epoch
    step_epochs: list[int] = field(default_factory=lambda: [20])  # step: lr x step_gamma at each
    step_gamma: float = 0.1
    label_smoothing: float = 0.0  # of the cross-entropy loss (reid: 0.1)
    backbone_lr_mult: float = 1.0  # lr multiplier of the trunk vs the new layers (reid: 0.2)
    sampler: str = "auto"  # auto | random | domain (auto: domain when mix=crossdomain)
    amp: bool = True  # CUDA only: autocast
    amp_dtype: str = "bfloat16"  # bfloat16 | float16 (float16 adds a gradient scaler)
    channels_last: bool = True  # CUDA only


@dataclass
class ProtocolConfig:
    name: str = "lodo"
    targets: list[str] | None = None  # which splits to run (LODO: held-out domains); None: all
    target: str | None = None  # reid: the dataset tested on (data.name is the source)
    splits: list[int] | None = None  # reid: which splits of a multi-split dataset; None: all


@dataclass
class Config:
    experiment: str | None = None  # results folder name; None: "<dataset>-<protocol>"
    seeds: list[int] = field(default_factory=lambda: [1])
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)


class CliText(str):
    """A value typed on the command line: converted to the parameter's type, not refused."""


# -- field table --------------------------------------------------------------------------
def _leaf_types(cls: type = Config, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> type annotation, for every leaf field."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(_leaf_types(tp, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = tp
    return out


LEAVES = _leaf_types()


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:
        item = typing.get_args(tp)[0]
        plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
        return f"a list of {plural.get(item, type_name(item))}"
    if origin is dict:
        return "a mapping"
    return {type(None): "null", bool: "true/false", int: "an integer", float: "a number",
            str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def coerce(key: str, value: Any, tp: Any, from_text: bool) -> Any:
    """Check ``value`` against ``tp``; convert text from the command line when ``from_text``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (from_text and str(value).lower() in ("null", "none")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(key, value, arg, from_text)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else _type_error(key, value, tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        if from_text and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise _type_error(key, value, tp)
        return [coerce(f"{key}[{i}]", v, item, from_text) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(key, value, tp)
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if from_text and str(value).lower() in _TRUE | _FALSE:
            return str(value).lower() in _TRUE
        raise _type_error(key, value, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if from_text:
            try:
                return int(str(value))
            except ValueError:
                pass
        raise _type_error(key, value, tp)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if from_text:
            try:
                return float(str(value))
            except ValueError:
                pass
        raise _type_error(key, value, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        if from_text:
            return str(value)
        raise _type_error(key, value, tp)
    raise TypeError(f"config field {key} has an unsupported type {tp}")  # a dgbench bug


def _type_error(key: str, value: Any, tp: Any) -> ConfigError:
    hint = ""
    if isinstance(value, str) and tp in (float, Union[float, None]):
        try:
            float(value)
            hint = (
                " (YAML reads a number like 5e-5 without a decimal point as a string; "
                "write 5.0e-5)"
            )
        except ValueError:
            pass
    return ConfigError(
        f"{key} must be {type_name(tp)}, got {type(value).__name__} {value!r}{hint}"
    )


def _unknown_key(key: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(LEAVES), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r}.{hint} Run 'dgbench run --help' for the keys")


def set_value(flat: dict[str, Any], key: str, value: Any, from_text: bool) -> None:
    """Type-check and store one dotted key; ``aug.args.NAME`` sets one augmenter argument."""
    if key.startswith("aug.args."):
        sub = key[len("aug.args."):]
        if from_text and isinstance(value, str):
            value = CliText(value)  # converted once the augmenter's signature is known
        args = dict(flat.get("aug.args", {}))
        head, _, tail = sub.partition(".")
        if tail:  # aug.args.mixstyle.alpha
            args[head] = {**args.get(head, {}), tail: value}
        else:
            args[sub] = value
        flat["aug.args"] = args
        return
    if key not in LEAVES:
        raise _unknown_key(key)
    flat[key] = coerce(key, value, LEAVES[key], from_text)


def flatten_yaml(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mapping from YAML -> dotted keys (``aug.args`` stays one mapping)."""
    if not isinstance(tree, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'the config file'} must be a mapping")
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key not in LEAVES:
            if not any(leaf.startswith(key + ".") for leaf in LEAVES):
                raise _unknown_key(key)
            flat.update(flatten_yaml(v, key + "."))
        else:
            flat[key] = v
    return flat


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read and check a YAML config file into dotted keys."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        tree = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    flat: dict[str, Any] = {}
    for key, value in flatten_yaml(tree).items():
        set_value(flat, key, value, from_text=False)
    return flat


def preset_names() -> dict[str, str]:
    """Installed presets: name -> the first line of its leading comment."""
    from importlib.resources import files

    out = {}
    for entry in sorted(files("dgbench.presets").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            lines = entry.read_text().splitlines()
            first = lines[0] if lines else ""
            out[entry.name[: -len(".yaml")]] = first.lstrip("# ").strip().rstrip(":")
    return out


def read_preset(name: str) -> dict[str, Any]:
    """The preset ``name`` (``scripts/presets/<name>.yaml``), checked like a config file."""
    from importlib.resources import as_file, files

    names = preset_names()
    if name not in names:
        close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown preset {name!r}.{hint} Presets: {', '.join(names)}")
    with as_file(files("dgbench.presets") / f"{name}.yaml") as path:
        return read_yaml(path)


def build(flat: dict[str, Any]) -> Config:
    """A :class:`Config` from checked dotted keys over the defaults."""
    cfg = Config()
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        obj = cfg
        for part in parents:
            obj = getattr(obj, part)
        setattr(obj, leaf, value)
    return cfg


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(tree: dict[str, Any]) -> Config:
    """Rebuild a Config from :func:`to_dict` output (e.g. a run record), checking it."""
    flat: dict[str, Any] = {}
    for key, value in flatten_yaml(tree).items():
        set_value(flat, key, value, from_text=False)
    return build(flat)

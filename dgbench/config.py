"""Typed, strict configuration: dataclasses with defaults, YAML files, flags and dotted overrides.

Precedence, lowest first: the dataclass defaults below, the chosen dataset's recommended
settings (``DomainDataset.defaults``), a YAML file (``--config`` / ``--preset``), then CLI
flags and ``KEY=VALUE`` overrides. Every rule lives beside its field: the type annotation
(``Literal[...]`` for enumerations) and the field's metadata (``ge``/``gt``/``lt`` ranges,
``nonempty``, ``pattern``, and ``identity=False`` for keys that say where things are rather
than what is computed). :func:`set_value` checks a value against them when it is set, so
every key is checked before any data is loaded. YAML values are checked as they are (PyYAML
reads ``lr: 5e-5`` as a *string*, which is refused); command-line text is converted.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from dgbench.errors import ConfigError


def _f(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING,
       help: str = "", **rules: Any) -> Any:
    """A dataclass field with its help text and rules in the metadata."""
    return field(default=default, default_factory=factory, metadata={"help": help, **rules})


Stem = Literal["imagenet", "nopool", "small"]


@dataclass
class DataConfig:
    name: str = _f("digits", help="registered dataset")
    root: str | None = _f(None, identity=False, help="where the dataset's files are")
    image_size: int = _f(224, ge=8, help="input size (reid: the height; the width is half)")
    batch_size: int = _f(64, ge=1, help="total batch; with mix=crossdomain half per domain")
    num_workers: int = _f(0, ge=0, help="data-loader worker processes")
    subsample: int | None = _f(None, ge=1, help="at most N images per (domain, split): smoke tests")
    cache: bool = _f(True, help="decoded-image cache + batched augmentation, where supported")


@dataclass
class ModelConfig:
    backbone: str = _f("resnet18", help="registered backbone, or timm:<name>")
    stem: Stem = _f(
        "imagenet", help="imagenet: 7x7/2 conv + pool; nopool: no pool; small: 3x3/1 conv")
    width: int = _f(64, ge=1, help="base channel width of a torchvision ResNet (64: standard)")
    pretrained: bool = _f(False, help="torchvision / timm ImageNet weights (downloads)")
    weights: str | None = _f(None, help="local checkpoint; its classifier is replaced")
    feature_dim: int = _f(512, ge=1, help="reid: width of the fc + BN + ReLU neck")
    last_stride: Literal[1, 2] = _f(1, help="reid: stride of layer4")


@dataclass
class AugConfig:
    names: list[str] = _f(factory=lambda: ["none"], nonempty=True,
                          help="augmenters, one run each")
    insert: list[str] | None = _f(None, help="[after:|before:]NAME or a glob per dotted "
                                  "segment (layer*.*.conv1); null: the backbone's default")
    shared: bool = _f(False, help="one instance at every point (as the official code)")
    args: dict[str, Any] = _f(factory=dict, help="arguments for every augmenter that takes "
                              "them ({alpha: 0.3}) or per augmenter ({mixstyle: {alpha: 0.3}})")


@dataclass
class TrainConfig:
    epochs: int = _f(50, ge=1)
    lr: float = _f(1e-3, gt=0.0)
    momentum: float = _f(0.9, ge=0.0, lt=1.0)
    weight_decay: float = _f(5e-4, ge=0.0)
    nesterov: bool = _f(False)
    schedule: Literal["cosine", "step", "constant"] = _f(
        "cosine", help="the LR of every epoch, set from training progress")
    step_epochs: list[int] = _f(factory=lambda: [20], ge=1,
                                help="step: lr x step_gamma at each of these epochs")
    step_gamma: float = _f(0.1, gt=0.0)
    label_smoothing: float = _f(0.0, ge=0.0, lt=1.0, help="of the cross-entropy loss")
    backbone_lr_mult: float = _f(1.0, ge=0.0, help="LR multiplier of the trunk vs new layers")
    sampler: Literal["auto", "random", "domain"] = _f(
        "auto", help="auto: domain when mix=crossdomain")
    amp: bool = _f(True, help="CUDA only: autocast")
    amp_dtype: Literal["bfloat16", "float16"] = _f("bfloat16", help="float16 adds a scaler")
    channels_last: bool = _f(True, help="CUDA only")


@dataclass
class ProtocolConfig:
    name: str = _f("lodo", help="registered protocol")
    targets: list[str] | None = _f(None, per_run=True,
                                   help="only these splits (LODO: held-out domains); null: all")
    target: str | None = _f(None, help="reid: the dataset tested on (data.name trains)")
    splits: list[int] | None = _f(None, ge=0, help="reid: splits of a multi-split dataset")


@dataclass
class Config:
    experiment: str | None = _f(None, identity=False, pattern=r"[A-Za-z0-9_.\-]+",
                                shape="a folder name: letters, digits, '.', '_', '-'",
                                help="results folder; null: <dataset>-<protocol>")
    seeds: list[int] = _f(factory=lambda: [1], nonempty=True, ge=0, per_run=True)
    device: str = _f("auto", pattern=r"auto|cpu|cuda(:\d+)?",
                     shape="auto, cpu, cuda or cuda:N")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)


class CliText(str):
    """A value typed on the command line: converted to the parameter's type, not refused."""


# -- the field table ------------------------------------------------------------------------
@dataclass(frozen=True)
class Leaf:
    key: str  # dotted
    type: Any
    default: Any
    rules: dict[str, Any]


def _leaves(cls: type = Config, prefix: str = "") -> dict[str, Leaf]:
    out: dict[str, Leaf] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(_leaves(tp, f"{prefix}{f.name}."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[f"{prefix}{f.name}"] = Leaf(f"{prefix}{f.name}", tp, default, dict(f.metadata))
    return out


FIELDS = _leaves()
LEAVES = {k: leaf.type for k, leaf in FIELDS.items()}
#: keys that say where things are, not what is computed: not part of a run's identity
NOT_IDENTITY = tuple(k for k, leaf in FIELDS.items() if leaf.rules.get("identity") is False)
#: keys that differ between the runs of one comparison row (what a table cell aggregates over)
PER_RUN = tuple(k for k, leaf in FIELDS.items() if leaf.rules.get("per_run"))


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
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
        return _coerce_union(key, value, typing.get_args(tp), from_text, tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        got = coerce(key, value, type(choices[0]), from_text)
        if got not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
        return got
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
    return _coerce_scalar(key, value, tp, from_text)


def _coerce_union(key: str, value: Any, args: tuple, from_text: bool, tp: Any) -> Any:
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


def _coerce_scalar(key: str, value: Any, tp: Any, from_text: bool) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        if from_text and str(value).lower() in _TRUE | _FALSE:
            return str(value).lower() in _TRUE
    elif tp in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and (tp is float or isinstance(value, int)):
            return tp(value)
        if from_text:
            try:
                return tp(str(value))
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str) or from_text:
            return str(value)
    else:
        raise TypeError(f"config field {key} has an unsupported type {tp}")  # a dgbench bug
    raise _type_error(key, value, tp)


def _type_error(key: str, value: Any, tp: Any) -> ConfigError:
    hint = ""
    if isinstance(value, str) and tp in (float, Union[float, None]):
        try:
            float(value)
            hint = (" (YAML reads a number like 5e-5 without a decimal point as a string; "
                    "write 5.0e-5)")
        except ValueError:
            pass
    return ConfigError(f"{key} must be {type_name(tp)}, got {type(value).__name__} {value!r}{hint}")


_BOUNDS = {"ge": (lambda v, b: v >= b, ">="), "gt": (lambda v, b: v > b, ">"),
           "lt": (lambda v, b: v < b, "<"), "le": (lambda v, b: v <= b, "<=")}


def check_rules(key: str, value: Any, rules: dict[str, Any]) -> None:
    """The field's own rules on an already typed value: ranges (each item of a list),
    finiteness, non-empty lists, a text pattern."""
    if value is None:
        return
    if rules.get("nonempty") and isinstance(value, list) and not value:
        raise ConfigError(f"{key} must list at least one value")
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key} must be a finite number; got {v}")
        for name, (ok, sign) in _BOUNDS.items():
            if name in rules and isinstance(v, (int, float)) and not ok(v, rules[name]):
                raise ConfigError(f"{key} must be {sign} {rules[name]}; got {v}")
        if "pattern" in rules and isinstance(v, str) and not re.fullmatch(rules["pattern"], v):
            raise ConfigError(f"{key} must be {rules.get('shape', rules['pattern'])}; got {v!r}")


def _unknown_key(key: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(FIELDS), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r}.{hint} Run 'dgbench run --help' for the keys")


def merge_aug_args(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``aug.args`` with ``new`` laid over ``base``: shared arguments replace, per-augmenter
    sections (``{mixstyle: {alpha: 0.3}}``) merge key by key."""
    out = dict(base)
    for k, v in new.items():
        both = isinstance(v, dict) and isinstance(out.get(k), dict)
        out[k] = {**out[k], **v} if both else v
    return out


def set_value(flat: dict[str, Any], key: str, value: Any, from_text: bool) -> None:
    """Type-check and store one dotted key; ``aug.args.NAME[.SUB]`` sets one augmenter
    argument (checked against the augmenter's signature when the runs are planned)."""
    if key.startswith("aug.args."):
        if from_text and isinstance(value, str):
            value = CliText(value)  # converted once the augmenter's signature is known
        head, _, tail = key[len("aug.args."):].partition(".")
        flat["aug.args"] = merge_aug_args(flat.get("aug.args", {}),
                                          {head: {tail: value}} if tail else {head: value})
        return
    if key not in FIELDS:
        raise _unknown_key(key)
    typed = coerce(key, value, FIELDS[key].type, from_text)
    check_rules(key, typed, FIELDS[key].rules)
    flat[key] = typed


def validate(cfg: Config) -> None:
    """Check every value of a :class:`Config` built in Python (set_value checks as it sets)."""
    tree = to_dict(cfg)
    for key, leaf in FIELDS.items():
        node: Any = tree
        for part in key.split("."):
            node = node[part]
        check_rules(key, coerce(key, node, leaf.type, from_text=False), leaf.rules)


def parse_aug_args(text: str) -> dict[str, Any]:
    """``alpha=0.3,mix=crossdomain,mixstyle.p=1`` -> aug.args (values as CliText)."""
    args: dict[str, Any] = {}
    # split on commas that start a new key=value pair, so values may hold commas
    for item in re.split(r",(?=\s*[A-Za-z_][\w.]*\s*=)", text):
        if not item.strip():
            continue
        if "=" not in item:
            raise ConfigError(f"--aug-args expects key=value pairs, got {item!r}")
        key, value = (s.strip() for s in item.split("=", 1))
        head, _, tail = key.partition(".")
        args = merge_aug_args(args, {head: {tail: CliText(value)}} if tail else {key: CliText(value)})
    return args


# -- files ----------------------------------------------------------------------------------
def flatten_yaml(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mapping from YAML -> dotted keys (``aug.args`` stays one mapping)."""
    if not isinstance(tree, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'the config file'} must be a mapping")
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key not in FIELDS:
            if not any(leaf.startswith(key + ".") for leaf in FIELDS):
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


# -- the command line: one table of flags, each naming the key it sets ----------------------
@dataclass(frozen=True)
class Flag:
    """A ``dgbench run`` flag that sets one config key (``const``: a switch with that value)."""

    name: str
    key: str
    help: str
    metavar: str | None = None
    const: Any = None

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


FLAGS = (
    Flag("--aug", "aug.names", "augmenters, e.g. none,mixstyle,efdmix", "LIST"),
    Flag("--protocol", "protocol.name", "protocol (default lodo)", "NAME"),
    Flag("--dataset", "data.name", "dataset (default digits)", "NAME"),
    Flag("--source", "data.name", "reid: the training dataset (= --dataset)", "NAME"),
    Flag("--target", "protocol.target", "reid: the dataset to rank, e.g. grid", "NAME"),
    Flag("--splits", "protocol.splits", "reid: splits of a multi-split dataset (GRID: 0..9; "
         "default all)", "LIST"),
    Flag("--data-root", "data.root", "where the dataset's files are", "DIR"),
    Flag("--targets", "protocol.targets", "only these splits (LODO: target domains)", "LIST"),
    Flag("--seeds", "seeds", "seeds, e.g. 1,2,3 (default 1)", "LIST"),
    Flag("--backbone", "model.backbone", "resnet18, resnet50 or timm:NAME", "NAME"),
    Flag("--insert", "aug.insert", "blocks to insert after, e.g. layer1,layer2", "LIST"),
    Flag("--pretrained", "model.pretrained", "ImageNet weights (downloads)", const=True),
    Flag("--weights", "model.weights", "local backbone checkpoint", "PATH"),
    Flag("--epochs", "train.epochs", "training epochs", "N"),
    Flag("--lr", "train.lr", "base learning rate", "X"),
    Flag("--batch-size", "data.batch_size", "total batch size", "N"),
    Flag("--device", "device", "auto (default), cpu, cuda, cuda:N", "DEV"),
    Flag("--experiment", "experiment", "results folder name", "NAME"),
    Flag("--no-cache", "data.cache", "decode images with PIL per item (data.cache=false) "
         "instead of the decoded-image cache with batched augmentation", const=False),
)


def user_settings(flags: dict[str, Any], preset: str | None = None, config_file: str | None = None,
                  aug_args: str | None = None, overrides: list[str] = ()) -> dict[str, Any]:
    """The user's checked dotted keys: a preset or a config file, then the flags (``dest`` ->
    value, as parsed), ``--aug-args`` text and ``KEY=VALUE`` overrides, in that order."""
    if config_file and preset:
        raise ConfigError("give --preset or --config, not both (a preset is a config file)")
    user = read_preset(preset) if preset else read_yaml(config_file) if config_file else {}
    given: dict[str, Flag] = {}
    for flag in FLAGS:
        value = flags.get(flag.dest)
        if value is None or value is False and flag.const is not None:
            continue
        value = flag.const if flag.const is not None else value
        other = given.get(flag.key)
        if other is not None and str(flags[other.dest]) != str(value):
            raise ConfigError(f"{other.name} and {flag.name} both set {flag.key}: give one")
        given[flag.key] = flag
        set_value(user, flag.key, value, from_text=flag.const is None)
    if aug_args:
        user["aug.args"] = merge_aug_args(user.get("aug.args", {}), parse_aug_args(aug_args))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"unexpected argument {item!r}; overrides look like train.lr=0.01")
        key, value = item.split("=", 1)
        set_value(user, key.strip(), value.strip(), from_text=True)
    return user


def keys_help() -> str:
    """Every key with its type, default and help, for ``dgbench run --help``."""
    lines = ["config keys (YAML, or KEY=VALUE on the command line):"]
    for key, leaf in FIELDS.items():
        help_text = f"  {leaf.rules['help']}" if leaf.rules.get("help") else ""
        lines.append(f"  {key:<22} {type_name(leaf.type):<28} default {leaf.default!r}{help_text}")
    lines.append("  (a dataset may recommend other defaults; see its 'defaults' in datasets/)")
    return "\n".join(lines)


# -- building -------------------------------------------------------------------------------
def assign(cfg: Config, key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``cfg`` (an already checked value)."""
    *parents, leaf = key.split(".")
    obj: Any = cfg
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, leaf, value)


def build(flat: dict[str, Any]) -> Config:
    """A :class:`Config` from checked dotted keys over the defaults."""
    cfg = Config()
    for key, value in flat.items():
        assign(cfg, key, value)
    return cfg


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(tree: dict[str, Any]) -> Config:
    """Rebuild a Config from :func:`to_dict` output (e.g. a run record), checking it."""
    flat: dict[str, Any] = {}
    for key, value in flatten_yaml(tree).items():
        set_value(flat, key, value, from_text=False)
    return build(flat)

"""Where settings come from: YAML files, the installed presets, and ``dgbench run``'s flags
(one table, :data:`FLAGS`, each flag naming the key it sets)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, TypeVar

from dgbench.config.check import (
    described,
    merge_aug_args,
    parse_aug_args,
    set_value,
    type_name,
    unknown_key,
)
from dgbench.config.schema import FIELDS, Config, build
from dgbench.core import files
from dgbench.core.errors import ConfigError, did_you_mean


# -- files ----------------------------------------------------------------------------------
def flatten_yaml(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mapping from YAML -> dotted keys (``aug.args`` stays one mapping)."""
    if not isinstance(tree, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'the config file'} must be a mapping (key: "
                          f"value lines), got {described(tree)}")
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        section = key not in FIELDS and any(leaf.startswith(key + ".") for leaf in FIELDS)
        if section and not isinstance(v, dict):
            raise ConfigError(f"{key} must be a mapping of its keys, got {described(v)}")
        if isinstance(v, dict) and key not in FIELDS:
            if not section:
                raise unknown_key(key)
            flat.update(flatten_yaml(v, key + "."))
        else:
            flat[key] = v
    return flat


def read_yaml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read and check a YAML config file into dotted keys; every error names the file."""
    tree = files.read_yaml(path, what)  # its own errors name the file
    return in_file(path, lambda: checked_keys(tree))


def checked_keys(tree: Any) -> dict[str, Any]:
    """A YAML mapping (nested or dotted keys) as checked dotted keys."""
    flat: dict[str, Any] = {}
    for key, value in flatten_yaml(tree).items():
        set_value(flat, key, value, from_text=False)
    return flat


T = TypeVar("T")


def in_file(path: str | Path, read: Callable[[], T]) -> T:
    """``read()``, its :class:`ConfigError` prefixed with ``path`` (what file the bad key or
    value is in) unless the message names that file already."""
    try:
        return read()
    except ConfigError as exc:
        if str(path) in str(exc):
            raise
        raise ConfigError(f"{path}: {exc}") from None


#: the presets: YAML files installed with the package (dgbench/config/presets/)
PRESETS = resources.files("dgbench.config") / "presets"


def preset_names() -> dict[str, str]:
    """Installed presets: name -> the first line of its leading comment."""
    out = {}
    for entry in sorted(PRESETS.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            lines = entry.read_text().splitlines()
            first = lines[0] if lines else ""
            out[entry.name[: -len(".yaml")]] = first.lstrip("# ").strip().rstrip(":")
    return out


def read_preset(name: str) -> dict[str, Any]:
    """The preset ``name`` (``dgbench/config/presets/<name>.yaml``), checked like a config
    file."""
    names = preset_names()
    if name not in names:
        hint = did_you_mean(name, names, cutoff=0.5)
        raise ConfigError(f"unknown preset {name!r}.{hint} Presets: {', '.join(names)}")
    with resources.as_file(PRESETS / f"{name}.yaml") as path:
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
    Flag("--targets", "protocol.targets", "only these splits, by name: LODO the held-out "
         "target domains, single the source domain that trains alone", "LIST"),
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
    Flag("--no-cache", "data.cache", "decode images with PIL per item instead of the "
         "decoded-image cache with batched augmentation", const=False),
)


def user_settings(flags: dict[str, Any], preset: str | None = None, config_file: str | None = None,
                  aug_args: str | None = None, overrides: list[str] = ()) -> dict[str, Any]:
    """The user's checked dotted keys: a preset or a config file, then the flags (``dest`` ->
    value, as parsed), ``--aug-args`` text and ``KEY=VALUE`` overrides, in that order."""
    if config_file is not None and preset is not None:
        raise ConfigError("give --preset or --config, not both (a preset is a config file)")
    for flag, given in (("--config", config_file), ("--preset", preset)):
        if given is not None and not given.strip():
            what = "YAML file" if flag == "--config" else "preset name (dgbench list presets)"
            raise ConfigError(f"{flag} is empty; give a {what}")
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
        if not key.strip():
            raise ConfigError(f"override {item!r} names no key; overrides look like train.lr=0.01")
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



def from_dict(tree: dict[str, Any]) -> Config:
    """Rebuild a Config from :func:`to_dict` output (e.g. a run record), checking it."""
    return build(checked_keys(tree))

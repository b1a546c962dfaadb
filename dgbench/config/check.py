"""Checking values: types (command-line text converted, YAML values as they are), the
fields' rules, and the augmenter-argument mapping ``aug.args``."""

from __future__ import annotations

import math
import re
import types
import typing
from typing import Any, Literal, Union

from dgbench.config.schema import FIELDS, Config, to_dict
from dgbench.core import keys
from dgbench.core.errors import ConfigError, did_you_mean


class CliText(str):
    """A value typed on the command line: converted to the parameter's type, not refused."""


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
            hint = did_you_mean(got, map(str, choices)) if isinstance(got, str) else ""
            raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}; got "
                              f"{value!r}.{hint}".rstrip("."))
        return got
    if origin is list:
        (item,) = typing.get_args(tp)
        if from_text and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise _type_error(key, value, tp, from_text)
        return [coerce(f"{key}[{i}]", v, item, from_text) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(key, value, tp, from_text)
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
    raise errors[0] if len(errors) == 1 else _type_error(key, value, tp, from_text)


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
    raise _type_error(key, value, tp, from_text)


def _type_error(key: str, value: Any, tp: Any, from_text: bool = False) -> ConfigError:
    hint = ""
    if isinstance(value, str) and tp in (float, Union[float, None]):
        try:
            float(value)
            hint = (" (YAML reads a number like 5e-5 without a decimal point as a string; "
                    "write 5.0e-5)")
        except ValueError:
            pass
    typed = repr(str(value)) if from_text and isinstance(value, str) else described(value)
    return ConfigError(f"{key} must be {type_name(tp)}, got {typed}{hint}")


def described(value: Any) -> str:
    """A value as the user wrote it: command-line text as typed (``'abc'``), a YAML value
    with its kind (``float 2.5``, ``a mapping {...}``, ``null``)."""
    if isinstance(value, CliText):
        return repr(str(value))
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return str(value).lower()
    kind = {dict: "a mapping", list: "a list", str: "text"}.get(type(value))
    return f"{kind or type(value).__name__} {value!r}"


_BOUNDS = {"ge": (lambda v, b: v >= b, ">="), "gt": (lambda v, b: v > b, ">"),
           "lt": (lambda v, b: v < b, "<"), "le": (lambda v, b: v <= b, "<=")}


def check_rules(key: str, value: Any, rules: dict[str, Any]) -> None:
    """The field's own rules on an already typed value: ranges (each item of a list),
    finiteness, non-empty lists, a text pattern."""
    if value is None:
        return
    if rules.get("nonempty") and isinstance(value, list) and not value:
        raise ConfigError(f"{key} must list at least one value")
    if rules.get("nonempty") and isinstance(value, str) and not value.strip():
        raise ConfigError(f"{key} is empty; give a value, or leave the key out for its default")
    if rules.get("unique") and isinstance(value, list):
        twice = next((v for i, v in enumerate(value) if v in value[:i]), None)
        if twice is not None:
            raise ConfigError(f"{key} lists {twice!r} twice ({', '.join(map(str, value))}); "
                              "give each value once")
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key} must be a finite number; got {v}")
        for name, (ok, sign) in _BOUNDS.items():
            if name in rules and isinstance(v, (int, float)) and not ok(v, rules[name]):
                raise ConfigError(f"{key} must be {sign} {rules[name]}; got {v}")
        if "pattern" in rules and isinstance(v, str) and not re.fullmatch(rules["pattern"], v):
            hint = (f" Did you mean {v.lower()!r}?"
                    if re.fullmatch(rules["pattern"], v.lower()) else "")
            raise ConfigError(f"{key} must be {rules.get('shape', rules['pattern'])}; got "
                              f"{v!r}.{hint}".rstrip("."))


#: the sections of the config (``train``, ``data``, ...): each holds dotted keys
SECTIONS = tuple(dict.fromkeys(k.split(".")[0] for k in FIELDS if "." in k))


def unknown_key(key: str) -> ConfigError:
    """An unknown dotted key, with the closest key (or section) and where the keys are listed."""
    if key in SECTIONS:
        some = [k for k in FIELDS if k.startswith(key + ".")]
        return ConfigError(f"{key} is a section, not a key: give one of its keys, e.g. "
                           f"{some[0]}=... (its keys: {', '.join(some)})")
    head, dot, tail = key.partition(".")
    lowered = f"{head.lower()}.{tail}"
    if dot and head not in SECTIONS and head.lower() in SECTIONS:  # Train.epochs
        hint = (f" Did you mean {lowered!r}?" if lowered in FIELDS
                else did_you_mean(lowered, FIELDS) or f" Did you mean {head.lower()!r}?")
    else:
        hint = did_you_mean(key, [*FIELDS, *(SECTIONS if not dot else ())])
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
        parts = [head, *([tail] if tail else [])]
        if not all(re.fullmatch(r"[A-Za-z_]\w*", part) for part in parts):
            raise ConfigError(f"{key} does not name an augmenter argument: write aug.args.NAME "
                              "(aug.args.alpha) or aug.args.AUGMENTER.NAME (aug.args.mixstyle.p)")
        flat["aug.args"] = merge_aug_args(flat.get("aug.args", {}),
                                          {head: {tail: value}} if tail else {head: value})
        return
    if key not in FIELDS:
        raise unknown_key(key)
    typed = coerce(key, value, FIELDS[key].type, from_text)
    check_rules(key, typed, FIELDS[key].rules)
    flat[key] = typed


def validate(cfg: Config) -> None:
    """Check every value of a :class:`Config` built in Python (set_value checks as it sets)."""
    tree = to_dict(cfg)
    for key, leaf in FIELDS.items():
        check_rules(key, coerce(key, keys.get(tree, key), leaf.type, from_text=False), leaf.rules)


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
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)?", key):
            raise ConfigError(f"--aug-args item {item.strip()!r} does not name an argument: write "
                              "NAME=VALUE (alpha=0.3) or AUGMENTER.NAME=VALUE (mixstyle.p=1)")
        head, _, tail = key.partition(".")
        given = args.get(head)
        if (isinstance(given, dict) and tail in given) if tail else key in args:
            raise ConfigError(f"--aug-args gives {key} twice ({text!r}); give it once")
        args = merge_aug_args(args, {head: {tail: CliText(value)}} if tail else {key: CliText(value)})
    return args


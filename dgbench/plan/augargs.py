"""An augmenter's arguments: its signature's defaults, the user's ``aug.args`` over them,
converted to the parameters' types and checked by the augmenter itself, before anything trains.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from dgbench import config as C
from dgbench.augmenters import AUGMENTERS
from dgbench.core.errors import ConfigError, did_you_mean


def _init_params(cls: type) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    params = {
        n: p
        for n, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations in a plugin: fall back to the defaults
        hints = {}
    return params, hints


def augmenter_arguments(name: str) -> list[str]:
    """The keyword arguments augmenter ``name`` takes."""
    return list(_init_params(AUGMENTERS.get(name))[0])


def augmenter_kwargs(name: str, args: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """All keyword arguments of augmenter ``name``: its defaults, overridden by ``args``.

    ``args`` holds arguments for every listed augmenter that accepts them (``alpha``), and
    per-augmenter sections (``{"mixstyle": {"alpha": 0.3}}``).
    """
    cls = AUGMENTERS.get(name)
    params, hints = _init_params(cls)
    kwargs = {n: p.default for n, p in params.items() if p.default is not p.empty}
    given = {k: v for k, v in args.items() if not (k in names and isinstance(v, dict))}
    given.update(args.get(name, {}) if isinstance(args.get(name), dict) else {})
    for key, value in given.items():
        if key not in params:
            if key in args.get(name, {}):  # named for this augmenter explicitly
                raise ConfigError(
                    f"augmenter {name} has no argument {key!r}.{did_you_mean(key, params)} "
                    f"Its arguments: {', '.join(params) or 'none'}"
                )
            continue  # a shared argument that this augmenter does not take
        default = params[key].default
        tp = hints.get(key, type(default) if default not in (None, params[key].empty) else Any)
        kwargs[key] = C.coerce(f"aug.args.{key}", value, tp, isinstance(value, C.CliText))
        C.check_rules(f"aug.args.{key}", kwargs[key], {})  # no nan or inf
    missing = [n for n, p in params.items() if n not in kwargs]
    if missing:
        raise ConfigError(f"augmenter {name} needs arguments {', '.join(missing)}")
    try:
        cls(**kwargs)  # the augmenter checks its own values
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"augmenter {name}: {exc}") from None
    return {k: (str(v) if isinstance(v, C.CliText) else v) for k, v in kwargs.items()}


def check_shared_args(args: dict[str, Any], names: list[str]) -> None:
    """Every key of ``aug.args``: a section of a listed augmenter, or an argument that some
    augmenter takes; a typo is named with the closest spelling."""
    for key, value in args.items():
        if key in names and isinstance(value, dict):
            continue
        if isinstance(value, dict) and key in AUGMENTERS:
            raise ConfigError(
                f"aug.args has a section for {key}, which is not among aug.names "
                f"({', '.join(names)})"
            )
        if isinstance(value, dict):
            raise ConfigError(
                f"aug.args has a section for {key!r}, which is no augmenter of aug.names "
                f"({', '.join(names)}).{did_you_mean(key, names, cutoff=0.5)}".rstrip(".")
            )
        if key in AUGMENTERS:
            raise ConfigError(
                f"{key} is an augmenter, not an argument: give its arguments as "
                f"{key}.NAME=VALUE (e.g. {key}.p=0.5)"
            )
        # A shared argument only some registered augmenter takes is fine (a preset's p and
        # alpha with --aug none); one that no augmenter takes at all is a typo.
        takers = [n for n in AUGMENTERS.names() if key in _init_params(AUGMENTERS.get(n))[0]]
        if not takers:
            own = [a for n in names for a in _init_params(AUGMENTERS.get(n))[0]]
            every = [a for n in AUGMENTERS.names() for a in _init_params(AUGMENTERS.get(n))[0]]
            hint = did_you_mean(key, own) or did_you_mean(key, every)
            raise ConfigError(
                f"no augmenter in {', '.join(names)} takes the argument {key!r}.{hint} Their "
                f"arguments: {', '.join(dict.fromkeys(own)) or 'none'} (see 'dgbench list "
                "augmenters')"
            )

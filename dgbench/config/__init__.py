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

from dgbench.config.check import (
    CliText,
    check_rules,
    described,
    coerce,
    merge_aug_args,
    parse_aug_args,
    set_value,
    type_name,
    validate,
)
from dgbench.config.schema import (
    FIELDS,
    NOT_IDENTITY,
    PER_RUN,
    AugConfig,
    Config,
    DataConfig,
    Leaf,
    ModelConfig,
    ProtocolConfig,
    Stem,
    TrainConfig,
    assign,
    build,
    to_dict,
)
from dgbench.config.sources import (
    FLAGS,
    Flag,
    checked_keys,
    flatten_yaml,
    from_dict,
    in_file,
    keys_help,
    preset_names,
    read_preset,
    read_yaml,
    user_settings,
)

__all__ = [
    "FIELDS", "FLAGS", "NOT_IDENTITY", "PER_RUN", "AugConfig", "CliText", "Config",
    "DataConfig", "Flag", "Leaf", "ModelConfig", "ProtocolConfig", "Stem", "TrainConfig",
    "assign", "build", "check_rules", "checked_keys", "coerce", "described", "flatten_yaml",
    "from_dict", "in_file", "keys_help",
    "merge_aug_args", "parse_aug_args", "preset_names", "read_preset", "read_yaml",
    "set_value", "to_dict", "type_name", "user_settings", "validate",
]

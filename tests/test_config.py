"""Typed, strict config: YAML files, dotted overrides, dataset defaults, augmenter arguments."""

from __future__ import annotations

import pytest

from dgbench import config as C
from dgbench.core.errors import ConfigError
from dgbench.config import CliText
from dgbench.plan.augargs import augmenter_kwargs
from dgbench.plan.planner import resolve


def write(tmp_path, text):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_yaml_reads_nested_keys(tmp_path):
    flat = C.read_yaml(write(tmp_path, "train:\n  lr: 0.01\n  epochs: 3\nseeds: [1, 2]\n"
                                       "aug:\n  names: [none, efdmix]\n  args: {alpha: 0.3}\n"))
    cfg = C.build(flat)
    assert cfg.train.lr == 0.01 and cfg.train.epochs == 3 and cfg.seeds == [1, 2]
    assert cfg.aug.names == ["none", "efdmix"] and cfg.aug.args == {"alpha": 0.3}


def test_yaml_lr_read_as_string_is_refused_with_a_fix(tmp_path):
    with pytest.raises(ConfigError) as info:
        C.read_yaml(write(tmp_path, "train:\n  lr: 5e-5\n"))
    assert "train.lr must be a number" in str(info.value) and "5.0e-5" in str(info.value)


@pytest.mark.parametrize("text,key", [
    ("train:\n  epochs: 2.5\n", "train.epochs"),
    ("train:\n  epochs: true\n", "train.epochs"),
    ("seeds: 1\n", "seeds"),
    ("model:\n  pretrained: 'yes'\n", "model.pretrained"),
    ("aug:\n  names: efdmix\n", "aug.names"),
])
def test_wrong_types_are_refused(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        C.read_yaml(write(tmp_path, text))


def test_unknown_keys_are_refused_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'train.epochs'"):
        C.read_yaml(write(tmp_path, "train:\n  epoch: 3\n"))
    with pytest.raises(ConfigError, match="unknown config key 'trian'"):
        C.read_yaml(write(tmp_path, "trian:\n  lr: 0.1\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        C.read_yaml(write(tmp_path, "- 1\n- 2\n"))


def test_missing_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        C.read_yaml(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not a valid YAML config file"):
        C.read_yaml(write(tmp_path, "train: [1,\n"))


def test_command_line_text_is_converted():
    flat = {}
    C.set_value(flat, "train.lr", "5e-5", from_text=True)
    C.set_value(flat, "seeds", "1,2,3", from_text=True)
    C.set_value(flat, "model.pretrained", "true", from_text=True)
    C.set_value(flat, "aug.insert", "null", from_text=True)
    assert flat == {"train.lr": 5e-5, "seeds": [1, 2, 3], "model.pretrained": True,
                    "aug.insert": None}
    with pytest.raises(ConfigError, match="train.epochs must be an integer"):
        C.set_value(flat, "train.epochs", "ten", from_text=True)


def test_dataset_defaults_sit_between_code_defaults_and_user():
    cfg = resolve({})
    assert cfg.data.name == "digits" and cfg.model.stem == "small" and cfg.data.image_size == 32
    cfg = resolve({"data.image_size": 48})
    assert cfg.data.image_size == 48 and cfg.model.stem == "small"
    assert C.Config().data.image_size == 224  # the code default stays the published one


def test_augmenter_arguments_are_checked_against_the_signature():
    names = ["mixstyle", "efdmix"]
    kw = augmenter_kwargs("efdmix", {"alpha": CliText("0.3"), "mix": CliText("crossdomain")}, names)
    assert kw == {"p": 0.5, "alpha": 0.3, "mix": "crossdomain", "stable": False}
    kw = augmenter_kwargs("mixstyle", {"alpha": 0.2, "efdmix": {"p": 1.0}}, names)
    assert kw["alpha"] == 0.2 and kw["p"] == 0.5
    with pytest.raises(ConfigError, match="has no argument 'beta'"):
        augmenter_kwargs("efdmix", {"efdmix": {"beta": 1}}, names)
    with pytest.raises(ConfigError, match="aug.args.alpha must be a number"):
        augmenter_kwargs("efdmix", {"alpha": "0.3"}, names)  # a YAML string is not a number
    with pytest.raises(ConfigError, match="mix must be one of"):
        augmenter_kwargs("efdmix", {"mix": "domain"}, names)
    with pytest.raises(ConfigError, match="p must be in"):
        augmenter_kwargs("efdmix", {"p": 1.5}, names)


def test_config_round_trips_through_a_record():
    cfg = resolve({"train.lr": 0.5, "aug.names": ["efdmix"]})
    assert C.from_dict(C.to_dict(cfg)) == cfg


@pytest.mark.parametrize("key,value,message", [
    ("train.schedule", "cosin", "train.schedule must be one of cosine, step, constant"),
    ("train.sampler", "domains", "train.sampler must be one of auto, random, domain"),
    ("model.stem", "tiny", "model.stem must be one of imagenet, nopool, small"),
    ("model.last_stride", "3", "model.last_stride must be one of 1, 2"),
    ("train.lr", "0", "train.lr must be > 0.0"),
    ("train.lr", "nan", "train.lr must be a finite number"),
    ("train.momentum", "1", "train.momentum must be < 1.0"),
    ("train.step_epochs", "20,0", "train.step_epochs must be >= 1"),
    ("seeds", "", "seeds must list at least one value"),
    ("seeds", "1,-2", "seeds must be >= 0"),
    ("experiment", "a/b", "experiment must be a folder name"),
    ("device", "tpu", "device must be auto, cpu, cuda or cuda:N"),
    ("data.subsample", "0", "data.subsample must be >= 1"),
])
def test_each_field_checks_its_own_rules(key, value, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        C.set_value({}, key, value, from_text=True)


def test_rules_apply_to_yaml_and_to_configs_built_in_python(tmp_path):
    with pytest.raises(ConfigError, match="train.schedule must be one of"):
        C.read_yaml(write(tmp_path, "train:\n  schedule: linear\n"))
    C.validate(C.Config())  # the defaults obey their own rules
    cfg = C.Config()
    cfg.train.epochs = 0
    with pytest.raises(ConfigError, match="train.epochs must be >= 1"):
        C.validate(cfg)


def test_identity_and_per_run_keys_are_declared_once():
    # the device is resolved where a run trains: not part of its identity (schema: id_as)
    assert set(C.NOT_IDENTITY) == {"experiment", "data.root", "protocol.loo_validation", "device"}
    assert set(C.PER_RUN) == {"seeds", "protocol.targets"}


def test_flags_come_from_one_table_and_clash_clearly():
    user = C.user_settings({"aug": "efdmix", "epochs": "3", "no_cache": True, "pretrained": False},
                           aug_args="alpha=0.3,efdmix.p=1", overrides=["aug.args.efdmix.mix=random"])
    assert user["aug.names"] == ["efdmix"] and user["train.epochs"] == 3
    assert user["data.cache"] is False and "model.pretrained" not in user
    assert user["aug.args"] == {"alpha": "0.3", "efdmix": {"p": "1", "mix": "random"}}
    with pytest.raises(ConfigError, match="--dataset and --source both set data.name"):
        C.user_settings({"dataset": "pacs", "source": "grid"})
    assert {f.key for f in C.FLAGS} <= set(C.FIELDS)


def test_no_field_claims_a_version_and_dead_tables_are_gone():
    """Keys added after runs were first recorded say so with ``id_when_set`` (no version
    numbers a 0.1.0 package never had); the unused LEAVES table is gone."""
    from dgbench.config import schema

    assert not hasattr(schema, "LEAVES")
    assert [k for k, leaf in schema.FIELDS.items() if "since" in leaf.rules] == []
    marked = [k for k, leaf in schema.FIELDS.items() if leaf.rules.get("id_when_set")]
    assert "train.cpu_amp" in marked and "train.domain_epoch" in marked


# -- issue 22: messages in the user's terms, the file named, suggestions, duplicates ---------
def test_messages_say_what_was_typed_not_an_internal_type():
    for key, tp in (("train.epochs", int), ("aug.args.alpha", float)):
        with pytest.raises(ConfigError) as info:
            C.coerce(key, CliText("abc"), tp, from_text=True)
        assert str(info.value).endswith("got 'abc'") and "CliText" not in str(info.value)
    with pytest.raises(ConfigError, match=r"aug\.args\.stable must be true/false, got 'maybe'$"):
        augmenter_kwargs("efdmix", {"stable": CliText("maybe")}, ["efdmix"])
    with pytest.raises(ConfigError, match=r"train\.epochs must be an integer, got 'ten'$"):
        C.user_settings({}, overrides=["train.epochs=ten"])
    # YAML values keep their kind, in YAML's words
    assert C.described(None).startswith("null") and C.described({"a": 1}) == "a mapping {'a': 1}"
    assert C.described("red") == "text 'red'" and C.described(2.5) == "float 2.5"
    assert C.described(True) == "true"


@pytest.mark.parametrize("text", [
    "train: [1,\n",                 # syntax
    "- 1\n- 2\n",                   # top-level type
    "'just text'\n",                # top-level type
    "trian:\n  lr: 0.1\n",          # unknown section
    "train:\n  epoch: 3\n",         # unknown key
    "train:\n  lr: [0.1]\n",        # wrong value type
    "train:\n",                     # a section without keys
    "seeds: [1, 1]\n",              # a rule
    "aug:\n  args: 3\n",
])
def test_every_yaml_problem_names_the_file(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        C.read_yaml(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text", [
    "axes: {seeds: [1\n", "- 1\n", "base: {train.epoch: 1}\n", "base: {train: {lr: 5e-5}}\n",
    "axes: {Seeds: [1]}\n", "axes: {train.lr: [fast]}\n", "config: missing.yaml\n",
    "preset: Digits-compare\n", "axes: {seeds: [1, 1]}\n", "base: {seeds: [2, 2]}\n",
])
def test_every_sweep_file_problem_names_the_file(tmp_path, text):
    from dgbench.plan.sweep import read_sweep

    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_sweep(path)
    assert str(path) in str(info.value) and f"{path}: {path}" not in str(info.value)


@pytest.mark.parametrize("override,hint", [
    ("train.schedule=Cosine", "Did you mean 'cosine'?"),
    ("device=CPU", "Did you mean 'cpu'?"),
    ("Train.epochs=1", "Did you mean 'train.epochs'?"),
    ("train.epoch=1", "Did you mean 'train.epochs'?"),
    ("data=digits", "data is a section, not a key: give one of its keys, e.g. data.name="),
])
def test_case_slips_and_typos_in_keys_and_choices_are_named(override, hint):
    with pytest.raises(ConfigError) as info:
        C.user_settings({}, overrides=[override])
    assert hint in str(info.value)


def test_augmenter_argument_typos_suggest_the_closest_argument():
    from dgbench.plan.augargs import check_shared_args

    for args, says in (({"alph": 0.3}, "takes the argument 'alph'. Did you mean 'alpha'?"),
                       ({"Alpha": 0.3}, "Did you mean 'alpha'?"),
                       ({"EFDMix": {"alpha": 0.1}}, "section for 'EFDMix'"),
                       ({"efdmix": 0.3}, "efdmix is an augmenter, not an argument")):
        with pytest.raises(ConfigError, match=says.replace("?", r"\?").replace(".", r"\.")):
            check_shared_args(args, ["efdmix"])
    with pytest.raises(ConfigError, match=r"no argument 'alph'\. Did you mean 'alpha'\?"):
        augmenter_kwargs("efdmix", {"efdmix": {"alph": CliText("0.3")}}, ["efdmix"])
    for text in ("=1", ".alpha=1", "efdmix.=1", "a.b.c=1"):
        with pytest.raises(ConfigError, match="does not name an argument"):
            C.parse_aug_args(text)


@pytest.mark.parametrize("key,value,typed", [
    ("seeds", "1,1", [1, 1]), ("seeds", "1,2,1", [1, 2, 1]),
    ("aug.names", "efdmix,efdmix", ["efdmix", "efdmix"]),
    ("protocol.targets", "plain,plain", ["plain", "plain"]), ("protocol.splits", "0,0", [0, 0]),
])
def test_a_list_naming_a_value_twice_is_refused(key, value, typed):
    with pytest.raises(ConfigError, match=rf"{key.replace('.', '[.]')} lists .* twice"):
        C.user_settings({}, overrides=[f"{key}={value}"])
    with pytest.raises(ConfigError, match="twice"):  # a config built in Python, too
        C.validate(C.build({key: typed}))


@pytest.mark.parametrize("override", ["protocol.targets=", "model.weights=", "data.root=",
                                      "protocol.target= ", "aug.insert="])
def test_empty_values_are_refused(override):
    with pytest.raises(ConfigError, match="empty|at least one value"):
        C.user_settings({}, overrides=[override])
    for flag in ("--config", "--preset"):
        with pytest.raises(ConfigError, match=f"{flag} is empty"):
            C.user_settings({}, **{"config_file" if flag == "--config" else "preset": ""})

"""The configuration's schema: dataclasses whose fields carry their defaults, help and rules.

Every rule lives beside its field: the type annotation (``Literal[...]`` for enumerations) and
the field's metadata: ``ge``/``gt``/``lt`` ranges (on each item of a list), ``nonempty`` (no
empty list or text), ``unique`` (a list naming one value twice is refused), ``pattern`` (with
``shape`` for the message), ``identity=False`` for keys that say where things are rather than
what is computed (not hashed into a run's id), ``per_run=True`` for keys that differ between
the runs of one comparison row, and ``id_when_set=True`` for keys added after runs were first
recorded: a run id hashes them only when they differ from their default, so adding a key does
not rename every existing run. ``id_as=V`` marks the keys that say on what a run computes (the
device, CUDA's autocast and memory format): they are resolved on the machine that trains, so a
run id hashes the fixed ``V`` in their place (the value every run planned on a CPU host hashed
before, so those ids hold) and, for the ones that are part of identity, what was asked when it
is not the default.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from dgbench.core import keys


def _f(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING,
       help: str = "", **rules: Any) -> Any:
    """A dataclass field with its help text and rules in the metadata."""
    return field(default=default, default_factory=factory, metadata={"help": help, **rules})


Stem = Literal["imagenet", "nopool", "small"]


@dataclass
class DataConfig:
    name: str = _f("digits", help="registered dataset")
    root: str | None = _f(None, identity=False, nonempty=True,
                          help="where the dataset's files are")
    image_size: int = _f(224, ge=8, help="input size (reid: the height; the width is half)")
    batch_size: int = _f(64, ge=1, help="total batch; with mix=crossdomain half per domain")
    num_workers: int = _f(0, ge=0, help="data-loader worker processes")
    subsample: int | None = _f(None, ge=1, help="at most N images per (domain, split): smoke tests")
    cache: bool = _f(True, help="decoded-image cache + batched augmentation, where supported")
    bad_images: Literal["error", "skip"] = _f(
        "error", id_when_set=True, help="unreadable image files: stop, naming them (before "
        "training), or leave them out of every split and list them in the records")


@dataclass
class ModelConfig:
    backbone: str = _f("resnet18", help="registered backbone, or timm:<name>")
    stem: Stem = _f(
        "imagenet", help="imagenet: 7x7/2 conv + pool; nopool: no pool; small: 3x3/1 conv")
    width: int = _f(64, ge=1, le=1024, help="base channel width of a torchvision ResNet (64: "
                    "standard; wider than 1024 is no ResNet any machine trains)")
    pretrained: bool = _f(False, help="torchvision / timm ImageNet weights (downloads)")
    weights: str | None = _f(None, nonempty=True,
                             help="local checkpoint; its classifier is replaced")
    feature_dim: int = _f(512, ge=1, help="reid: width of the fc + BN + ReLU neck")
    last_stride: Literal[1, 2] = _f(1, help="reid: stride of layer4")
    dropout: float = _f(0.0, ge=0.0, lt=1.0, id_when_set=True, help="dropout on the pooled "
                        "features before the classifier (DomainBed's resnet_dropout)")
    freeze_bn: bool = _f(False, id_when_set=True, help="BatchNorm layers stay in eval mode while "
                         "training: running statistics fixed (DomainBed 2020's ResNet)")


@dataclass
class AugConfig:
    names: list[str] = _f(factory=lambda: ["none"], nonempty=True, unique=True,
                          help="augmenters, one run each")
    insert: list[str] | None = _f(None, nonempty=True, help="[after:|before:]NAME or a glob "
                                  "per dotted segment (layer*.*.conv1); null: the backbone's default")
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
    domain_epoch: Literal["fixed", "dassl"] = _f(
        "fixed", id_when_set=True, help="domain sampler: fixed len(train) // batch batches, or "
        "Dassl's epoch (ends when a drawn domain runs short), as published")
    amp: bool = _f(True, id_as=False, help="CUDA only: autocast")
    amp_dtype: Literal["bfloat16", "float16"] = _f("bfloat16", help="float16 adds a scaler")
    channels_last: bool = _f(True, id_as=False, help="CUDA only")
    cpu_amp: bool = _f(False, id_when_set=True, help="CPU: bfloat16 autocast + channels_last; pays "
                       "off only with AVX-512 bf16 / AMX units (6-8x slower on an AVX2 CPU)")
    compile: bool = _f(False, id_when_set=True, help="torch.compile the training forward (minutes "
                       "of compiling first; other rounding, so another run)")
    optimizer: Literal["sgd", "adam"] = _f(
        "sgd", id_when_set=True, help="sgd (momentum, nesterov, weight_decay as set) or adam "
        "(torch's Adam with weight_decay as L2, DomainBed's)")
    steps: int | None = _f(None, ge=1, id_when_set=True, help="step-based training (protocol "
                           "domainbed): this many steps, evaluated every checkpoint_freq; null: "
                           "train.epochs epochs")
    checkpoint_freq: int | None = _f(None, ge=1, id_when_set=True, help="steps between "
                                     "evaluations (and checkpoints); null: the dataset's")


@dataclass
class ProtocolConfig:
    name: str = _f("lodo", help="registered protocol")
    targets: list[str] | None = _f(None, per_run=True, nonempty=True, unique=True,
                                   help="only these splits (LODO: the held-out target domains; "
                                   "single: the source domains); null: all")
    target: str | None = _f(None, nonempty=True,
                            help="reid: the dataset tested on (data.name trains)")
    splits: list[int] | None = _f(None, ge=0, nonempty=True, unique=True,
                                  help="reid: splits of a multi-split dataset")
    loo_validation: bool = _f(False, identity=False, id_when_set=True,
                              help="lodo: also one run per target and held-out source; domainbed: "
                              "also one run per pair of test domains; for --select loo "
                              "(leave-one-domain-out validation)")
    recipe: Literal["domainbed-2020", "domainbed"] = _f(
        "domainbed", id_when_set=True, help="domainbed: DomainBed's code state: domainbed-2020 "
        "(commit 7df6f06, its published table) or domainbed (HEAD's defaults)")
    hparams_seeds: list[int] = _f(factory=lambda: [0], nonempty=True, unique=True, ge=0,
                                  id_when_set=True, help="domainbed: DomainBed's hparams_seed, one "
                                  "run each: 0 the defaults, others random draws")
    holdout_fraction: float = _f(0.2, gt=0.0, lt=1.0, id_when_set=True,
                                 help="domainbed: each domain's share in its 'out' part")


@dataclass
class Config:
    experiment: str | None = _f(None, identity=False, pattern=r"(?!\.+$)[A-Za-z0-9_.\-]+",
                                shape="a folder name: letters, digits, '.', '_', '-' (not "
                                "only dots)",
                                help="results folder; null: <dataset>-<protocol>")
    seeds: list[int] = _f(factory=lambda: [1], nonempty=True, unique=True, ge=0, le=2**32 - 1,
                          per_run=True)
    device: str = _f("auto", identity=False, id_as="cpu", pattern=r"auto|cpu|cuda(:\d+)?",
                     shape="auto, cpu, cuda or cuda:N",
                     help="auto: CUDA where the run trains has it, else the CPU")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)


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
#: keys that say where things are, not what is computed: not part of a run's identity
NOT_IDENTITY = tuple(k for k, leaf in FIELDS.items() if leaf.rules.get("identity") is False)
#: keys that differ between the runs of one comparison row (what a table cell aggregates over)
PER_RUN = tuple(k for k, leaf in FIELDS.items() if leaf.rules.get("per_run"))



def assign(cfg: Config, key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``cfg`` (an already checked value)."""
    keys.assign(cfg, key, value)


def build(flat: dict[str, Any]) -> Config:
    """A :class:`Config` from checked dotted keys over the defaults."""
    cfg = Config()
    for key, value in flat.items():
        assign(cfg, key, value)
    return cfg


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)

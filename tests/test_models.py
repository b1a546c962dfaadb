"""Backbones and augmenter insertion: real child modules, unchanged state_dict keys, eval off."""

from __future__ import annotations

import pytest
import torch
import torchvision

from dgbench.augmenters.efdmix import EFDMix
from dgbench.core.errors import ConfigError, DataError
from dgbench.models.backbones import build_backbone
from dgbench.models.insertion import default_insert, insert_augmenters, stage_names


def small_r18(num_classes=5, **kw):
    return build_backbone("resnet18", num_classes, stem="small", width=8, **kw)


def test_insertion_keeps_state_dict_keys_and_shows_in_print():
    model = small_r18()
    before = list(model.state_dict())
    insert_augmenters(model, ["layer1", "layer2", "layer3"], lambda: EFDMix(p=1.0), "efdmix")
    assert list(model.state_dict()) == before
    names = [n for n, m in model.named_modules() if isinstance(m, EFDMix)]
    assert names == ["layer1.efdmix", "layer2.efdmix", "layer3.efdmix"]
    assert "(efdmix): EFDMix(p=1.0" in str(model)


def test_weights_load_before_or_after_insertion():
    source = small_r18()
    target = small_r18()
    insert_augmenters(target, ["layer1"], lambda: EFDMix(), "efdmix")
    target.load_state_dict(source.state_dict(), strict=True)
    plain = small_r18()
    plain.load_state_dict(target.state_dict(), strict=True)


def test_eval_switches_augmenters_off_and_train_on():
    torch.manual_seed(0)
    model = small_r18()
    insert_augmenters(model, ["layer1", "layer2"], lambda: EFDMix(p=1.0), "efdmix")
    x = torch.rand(4, 3, 16, 16)
    model.eval()
    assert all(not m.training for m in model.modules() if isinstance(m, EFDMix))
    ref = small_r18()
    ref.load_state_dict(model.state_dict())
    ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))  # augmenters are identities in eval
    model.train()
    assert all(m.training for m in model.modules() if isinstance(m, EFDMix))


def test_augmenters_move_with_the_model():
    model = small_r18()
    insert_augmenters(model, ["layer3"], lambda: EFDMix(), "efdmix")
    model.to(torch.float64)
    assert model.layer3.efdmix in list(model.modules())


def test_unknown_block_lists_valid_ones():
    model = small_r18()
    with pytest.raises(ConfigError) as info:
        insert_augmenters(model, ["layer5"], lambda: EFDMix(), "efdmix")
    assert "layer5" in str(info.value) and "layer1, layer2, layer3, layer4" in str(info.value)


def test_default_insertion_points_follow_protocols():
    assert default_insert(small_r18()) == ["layer1", "layer2", "layer3"]
    r50 = build_backbone("resnet50", 7, width=8)
    assert default_insert(r50) == ["layer1", "layer2"]
    assert stage_names(r50) == ["layer1", "layer2", "layer3", "layer4"]


def test_small_stem_gives_8x8_at_layer3_on_32px():
    model = build_backbone("resnet18", 10, stem="small", width=16)
    shapes = {}
    for name in ("layer1", "layer2", "layer3"):
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[-2:])))
    model(torch.rand(2, 3, 32, 32))
    assert shapes == {"layer1": (32, 32), "layer2": (16, 16), "layer3": (8, 8)}


def test_standard_resnet18_matches_torchvision():
    ours = build_backbone("resnet18", 1000)
    theirs = torchvision.models.resnet18()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()}


def test_local_weights_replace_the_classifier(tmp_path):
    torch.manual_seed(1)
    trained = small_r18(num_classes=5)
    path = tmp_path / "ckpt.pth"
    # wrapped and DataParallel-prefixed, as checkpoints often are
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}, path)
    model = small_r18(num_classes=3, weights=str(path))
    assert model.fc.out_features == 3
    torch.testing.assert_close(model.layer2[0].conv1.weight, trained.layer2[0].conv1.weight)


def test_local_weights_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        small_r18(weights=str(tmp_path / "missing.pth"))
    other = build_backbone("resnet18", 5, width=16)
    torch.save(other.state_dict(), tmp_path / "w16.pth")
    with pytest.raises(DataError, match="shapes differ"):
        build_backbone("resnet18", 5, width=8, weights=str(tmp_path / "w16.pth"))
    torch.save({"a": 1}, tmp_path / "junk.pth")
    with pytest.raises(DataError, match="state_dict"):
        small_r18(weights=str(tmp_path / "junk.pth"))


def test_pretrained_weights_are_downloaded_checked_and_recorded(tmp_path, monkeypatch):
    """The real download path, fed a local file through a file:// URL: the hash prefix in the
    name is checked, the weights load, and the run can say where they came from."""
    import hashlib

    from dgbench.models.backbones import load_pretrained

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    reference = torchvision.models.resnet18()
    source = tmp_path / "ref.pth"
    torch.save(reference.state_dict(), source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    model = torchvision.models.resnet18()
    load_pretrained(model, source.as_uri(), name=f"resnet18-{digest[:8]}.pth")
    torch.testing.assert_close(model.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)
    assert model.weights_source == {"url": source.as_uri(), "sha256": digest,
                                    "file": str(tmp_path / "hub" / "checkpoints" / f"resnet18-{digest[:8]}.pth")}
    # torchvision's own file name carries another hash prefix: a file that fails it is refused
    bad = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    bad.write_bytes(source.read_bytes())
    with pytest.raises(DataError, match="not the expected f37072fd"):
        build_backbone("resnet18", 7, pretrained=True)
    with pytest.raises(ConfigError, match="width=64"):
        build_backbone("resnet18", 7, width=16, pretrained=True)
    # no network: one line with the URL, where dgbench looked, and --weights
    with pytest.raises(DataError, match="could not download .*looked for .*--weights"):
        load_pretrained(model, (tmp_path / "absent.pth").as_uri())
    assert not list((tmp_path / "hub" / "checkpoints").glob("absent*"))


def test_timm_resnet_by_name():
    model = build_backbone("timm:resnet18", 4, stem="small")
    assert stage_names(model)[:4] == ["layer1", "layer2", "layer3", "layer4"]
    insert_augmenters(model, ["layer1"], lambda: EFDMix(), "efdmix")
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 4)
    with pytest.raises(ConfigError, match="unknown timm model"):
        build_backbone("timm:resnet_nonexistent", 4)


# -- insertion anywhere: names, globs, before/after, shared instances ----------------------
def _tv(depth: int) -> torch.nn.Module:
    return build_backbone(f"resnet{depth}", 7)


@pytest.mark.parametrize("depth,blocks", [(18, 8), (50, 16)])
def test_glob_points_resolve_to_the_expected_modules(depth, blocks):
    from dgbench.models.insertion import resolve_points

    model = _tv(depth)
    points = resolve_points(model, ["layer*.*.conv1"])
    assert len(points) == blocks and points[0].module == "layer1.0.conv1"
    assert all(p.position == "after" and p.module.endswith(".conv1") for p in points)
    assert [p.module for p in resolve_points(model, ["before:bn1", "maxpool"])] == ["bn1", "maxpool"]
    assert resolve_points(model, ["before:bn1"])[0].position == "before"


@pytest.mark.parametrize("depth", [18, 50])
def test_official_presets_resolve_on_both_backbones(depth):
    from dgbench.config import read_preset
    from dgbench.models.insertion import resolve_points

    model = _tv(depth)
    dsu = resolve_points(model, read_preset("dsu-official")["aug.insert"])
    assert [(p.position, p.module) for p in dsu] == [
        ("before", "bn1"), ("after", "maxpool"), *[("after", f"layer{i}") for i in range(1, 5)]]
    padain = resolve_points(model, read_preset("padain-official")["aug.insert"])
    convs = [n for n, m in model.named_modules()
             if isinstance(m, torch.nn.Conv2d) and "downsample" not in n]
    assert sorted(p.module for p in padain) == sorted(convs)  # the official code's points:
    assert len(padain) == {18: 17, 50: 49}[depth]  # the stem and every residual conv, no shortcut
    assert all(p.position == "after" for p in padain)


class Tag(torch.nn.Module):
    """Records what it receives and marks it, to see where and when it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return x + 1000.0 if self.training else x


def test_before_and_after_run_at_the_right_place_and_keep_keys():
    import copy

    model = small_r18().eval()
    keys = list(model.state_dict())
    x = torch.randn(2, 3, 16, 16)
    stem = model.conv1(x)
    placed = insert_augmenters(model, ["before:bn1", "after:layer2.1.conv2", "layer3"], Tag, "tag")
    assert placed == ["bn1.tag_before", "layer2.1.conv2.tag", "layer3.tag"]
    assert list(model.state_dict()) == keys  # pretrained checkpoints still load
    model.train()
    model(x)
    assert torch.allclose(model.bn1.tag_before.seen[0], stem)  # bn1's input = conv1's output
    assert model.get_submodule("layer2.1.conv2.tag").seen[0].shape[1] == model.layer2[1].conv2.out_channels
    model.eval()
    clean = small_r18().eval()
    clean.load_state_dict(model.state_dict())
    assert torch.allclose(model(x), clean(x))  # eval: augmenters pass through
    copy.deepcopy(model)(x)  # hooks survive a deep copy
    assert "(tag_before): Tag()" in str(model)


def test_shared_instance_setting():
    model = small_r18()
    insert_augmenters(model, ["layer1", "after:conv1"], lambda: EFDMix(), "efdmix", shared=True)
    assert model.layer1.efdmix is model.conv1.efdmix
    other = small_r18()
    insert_augmenters(other, ["layer1", "after:conv1"], lambda: EFDMix(), "efdmix")
    assert other.layer1.efdmix is not other.conv1.efdmix


@pytest.mark.parametrize("spec,message", [
    ("layer9", "matches no module"), ("inside:conv1", "write NAME"),
    ("layer*.*.nothing", "matches no module"), ("after:", "write NAME")])
def test_bad_points(spec, message):
    with pytest.raises(ConfigError, match=message):
        insert_augmenters(small_r18(), [spec], lambda: EFDMix(), "efdmix")
    with pytest.raises(ConfigError, match="repeat"):
        insert_augmenters(small_r18(), ["layer1", "after:layer?"], lambda: EFDMix(), "efdmix")

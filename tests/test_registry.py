"""Registry behaviour, explicit registration of every plugin file, and entry-point plugins."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import dgbench
from dgbench.core.errors import UnknownNameError
from dgbench.augmenters import AUGMENTERS
from dgbench.models.backbones import BACKBONES
from dgbench.data.base import DATASETS
from dgbench.data.protocols import PROTOCOLS
from dgbench.core.registry import Registry

REPO = Path(__file__).resolve().parents[1]


def test_register_lookup_and_description():
    reg = Registry("widget")

    @reg.register("alpha")
    class Alpha:
        """First line describes it.

        More text."""

    assert reg.get("alpha") is Alpha
    assert reg.entry("alpha").description == "First line describes it."
    assert "alpha" in reg and reg.names() == ["alpha"] and len(reg) == 1


def test_duplicate_name_raises():
    reg = Registry("widget")
    reg.add("alpha", object())
    with pytest.raises(ValueError, match="already registered"):
        reg.add("alpha", object())


@pytest.mark.parametrize("bad", ["Alpha", "has space", "", "1abc", None])
def test_names_must_be_lowercase_identifiers(bad):
    with pytest.raises(ValueError):
        Registry("widget").add(bad, object())


def test_unknown_name_suggests_closest_and_lists_all():
    reg = Registry("widget")
    for name in ("efdmix", "mixstyle", "none"):
        reg.add(name, object())
    with pytest.raises(UnknownNameError) as info:
        reg.get("efdmx")
    message = str(info.value)
    assert "unknown widget 'efdmx'" in message
    assert "Did you mean 'efdmix'?" in message
    assert "efdmix, mixstyle, none" in message


@pytest.mark.parametrize("registry,typed,meant", [
    (AUGMENTERS, "EFDMix", "efdmix"), (AUGMENTERS, "NONE", "none"), (AUGMENTERS, "EFDM", "efdm"),
    (PROTOCOLS, "LODO", "lodo"), (DATASETS, "PACS", "pacs"), (BACKBONES, "ResNet18", "resnet18"),
])
def test_a_case_slip_is_named_with_the_right_spelling(registry, typed, meant):
    with pytest.raises(UnknownNameError) as info:
        registry.get(typed)
    assert f"Did you mean {meant!r}? (names are lowercase)" in str(info.value)


def test_did_you_mean_ignores_case_and_stays_quiet_when_nothing_is_close():
    from dgbench.core.errors import did_you_mean

    assert did_you_mean("Photo", ["plain", "photo"]) == " Did you mean 'photo'?"
    assert did_you_mean("phot", ["plain", "photo"]) == " Did you mean 'photo'?"
    assert did_you_mean("zzz", ["plain", "photo"]) == ""
    assert did_you_mean("photo", ["photo"]) == ""  # nothing to correct


def test_builtin_registries_hold_the_spine():
    assert {"none", "mixstyle", "efdmix"} <= set(AUGMENTERS.names())
    assert "digits" in DATASETS.names()
    assert "lodo" in PROTOCOLS.names()
    assert {"resnet18", "resnet50"} <= set(BACKBONES.names())


@pytest.mark.parametrize("folder,package", [("augmenters", "dgbench.augmenters"),
                                            ("datasets", "dgbench.datasets")])
def test_every_plugin_file_is_imported(folder, package):
    importlib.import_module(package)
    files = sorted(p.stem for p in (REPO / folder).glob("*.py") if p.stem != "__init__")
    assert files, f"no modules in {folder}/"
    missing = [f for f in files if f"{package}.{f}" not in sys.modules]
    assert not missing, f"{folder}/__init__.py does not import {missing}"


def test_no_top_level_datasets_package_is_installed(tmp_path):
    # `datasets` is Hugging Face's name; ours is installed as dgbench.datasets only. Run
    # outside the repo, so that the current folder is not what makes `datasets` importable.
    import dgbench.datasets as ours

    assert Path(ours.__file__).resolve().parent == REPO / "datasets"
    code = (
        "import importlib.util as u; s = u.find_spec('datasets'); "
        "print(s.origin if s else None); print(u.find_spec('augmenters'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    origin, aug = out.stdout.split()
    assert origin == "None" or Path(origin).resolve().parent != REPO / "datasets"
    assert aug == "None"


def test_import_dgbench_is_light():
    code = "import sys, dgbench; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert dgbench.__version__


def _write_plugin(root: Path, body: str, module: str = "dgb_plugin_demo", entry: str | None = None) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    dist = root / "dgb_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dgb-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[dgbench.augmenters]\n{entry or 'demo = ' + module}\n")


PLUGIN = """
    import torch
    from dgbench.augmenters import AUGMENTERS

    @AUGMENTERS.register("scaleaug")
    class ScaleAug(torch.nn.Module):
        \"\"\"Multiply features by a constant (a plugin example).\"\"\"

        def __init__(self, factor: float = 2.0) -> None:
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor if self.training else x
"""


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch):
    _write_plugin(tmp_path, PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(AUGMENTERS, "_loaded", False)  # scan the entry points again
    try:
        assert "scaleaug" in AUGMENTERS.names()
        assert "plugin 'demo'" in AUGMENTERS.entry("scaleaug").source
    finally:
        AUGMENTERS.remove("scaleaug")
        sys.modules.pop("dgb_plugin_demo", None)


def test_broken_plugin_warns_and_does_not_crash(tmp_path, monkeypatch):
    _write_plugin(tmp_path, "raise ImportError('missing dependency xyz')\n", module="dgb_broken")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("augmenter", "dgbench.augmenters")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert reg.names() == []
    assert any("plugin 'demo'" in str(w.message) and "xyz" in str(w.message) for w in caught)


def test_plugin_in_cli_list_and_run(tmp_path):
    """A distribution on the path (no install, no change to this repo) shows up everywhere."""
    _write_plugin(tmp_path, PLUGIN)
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "dgbench", "list", "augmenters"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "scaleaug" in out.stdout and "plugin example" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "dgbench", "run", "--aug", "scaleaug", "--aug-args", "factor=3",
         "--dry-run", "--out", str(tmp_path / "res")],
        capture_output=True, text=True, env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "scaleaug seed=1 photo" in out.stdout
    assert not (tmp_path / "res").exists()


def test_docs_augmenter_table_is_generated_from_the_registry():
    from dgbench.report.augmenter_table import augmenter_markdown

    committed = (Path(__file__).resolve().parents[1] / "docs" / "augmenters.md").read_text()
    assert committed == augmenter_markdown(), (
        "docs/augmenters.md is stale: run 'dgbench list augmenters --markdown > docs/augmenters.md'")
    for name in AUGMENTERS.names():
        if AUGMENTERS.entry(name).source.startswith("dgbench."):
            cls = AUGMENTERS.get(name)
            assert all(getattr(cls, k, None) for k in ("paper", "detached", "placement", "cost")), name
            assert f"`{name}`" in committed

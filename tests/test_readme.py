"""The README's recipes, run as written: adding an augmenter inside the repo, and a plugin's
module. What the README tells a user to do must pass the suite it describes."""

from __future__ import annotations

import itertools
import re
import sys
import types
from pathlib import Path

import pytest

from dgbench.cli import main
from dgbench.augmenters import AUGMENTERS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def code_block(first_line: str) -> str:
    """The fenced code block of the README whose first line starts with ``first_line``."""
    found = re.search(r"```\w*\n(" + re.escape(first_line) + r".*?)```", README, re.S)
    assert found, f"no code block starting with {first_line!r} in the README"
    return found.group(1)


def load_as(module_name: str, code: str) -> types.ModuleType:
    module = types.ModuleType(module_name)
    module.__file__ = f"<README {module_name}>"
    sys.modules[module_name] = module
    exec(compile(code, module.__file__, "exec"), module.__dict__)
    return module


def contract_tests() -> list[tuple[str, object, list[dict]]]:
    """Every test of tests/test_augmenters.py parametrized over the whole registry, with the
    combinations of its other parameters."""
    import test_augmenters as T

    found = []
    for name, fn in vars(T).items():
        all_marks = getattr(fn, "pytestmark", [])
        marks = [m for m in all_marks if m.name == "parametrize"]
        if not name.startswith("test_") or not any(
                m.args[0] == "name" and m.args[1] is T.ALL for m in marks):
            continue  # not a test of the whole registry
        if any(m.name == "skipif" and m.args[0] for m in all_marks):
            continue  # as pytest skips it here (e.g. no CUDA)
        others = [(m.args[0], m.args[1]) for m in marks if m.args[0] != "name"]
        combos = [dict(zip([a for a, _ in others], values))
                  for values in itertools.product(*[v for _, v in others])]
        found.append((name, fn, combos))
    return found


@pytest.fixture
def registered():
    """Register the README's augmenter (as a built-in module would be) and the plugin's."""
    names = []
    try:
        load_as("dgbench.augmenters.gaussnoise", code_block("# augmenters/gaussnoise.py"))
        load_as("my_dg_plugin", code_block("# my-dg-plugin/my_dg_plugin.py"))
        names = ["gaussnoise", "featdrop"]
        yield names
    finally:
        for name in ("gaussnoise", "featdrop"):
            AUGMENTERS.remove(name)
        for module in ("dgbench.augmenters.gaussnoise", "my_dg_plugin"):
            sys.modules.pop(module, None)


def test_readme_augmenters_pass_the_contract(registered):
    tests = contract_tests()
    assert len(tests) >= 6  # the contract is there to run
    for aug in registered:
        for test_name, fn, combos in tests:
            for extra in combos:
                try:
                    fn(name=aug, **extra)
                except pytest.skip.Exception:
                    pass
                except AssertionError as exc:
                    raise AssertionError(f"README's {aug} fails {test_name}{extra}: {exc}")


def test_readme_steps_for_a_new_builtin_augmenter(registered, tmp_path, capsys):
    from dgbench.report.augmenter_table import augmenter_markdown

    # step 2: the import line; step 3: the docs command is the one the stale-docs test names
    assert "import it in `augmenters/__init__.py`" in README
    command = "dgbench list augmenters --markdown > docs/augmenters.md"
    assert command in README
    docs_test = (Path(__file__).parent / "test_registry.py").read_text()
    assert command in docs_test
    assert main(["list", "augmenters", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert table == augmenter_markdown() and "`gaussnoise`" in table  # a built-in now
    print(AUGMENTERS.get("gaussnoise")(), file=sys.stderr)
    assert "GaussNoise(p=0.5, sigma=0.1)" in capsys.readouterr().err  # extra_repr, generated
    # the README's command, on the tiny test dataset for one epoch
    command = re.search(r"`(dgbench run --aug gaussnoise [^`]*)`", README).group(1).split()[1:]
    assert main([*command, "--dataset", "toy", "--targets", "red", "--no-progress",
                 "--out", str(tmp_path)]) == 0
    (record,) = list(tmp_path.rglob("record.json"))
    assert '"sigma": 0.2' in record.read_text()


def test_the_readme_weights_example_works_as_written(tmp_path, monkeypatch):
    """The two commands of the --weights example, run in a scratch folder (one target and one
    epoch added, to keep it short)."""
    import subprocess

    block = code_block('python -c "import torch, torchvision; torch.save(')
    make, run = [line for line in block.splitlines() if line.strip()]
    monkeypatch.chdir(tmp_path)
    subprocess.run(make, shell=True, check=True)
    argv = run.split("#")[0].split()[1:]
    assert main([*argv, "--targets", "plain", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "res")]) == 0
    (record,) = list((tmp_path / "res").rglob("record.json"))
    assert '"sha256"' in record.read_text() and "r18.pth" in record.read_text()


def _readme_commands() -> list[str]:
    """Every `dgbench ...` line of the README's bash blocks (continuations joined, comments cut)."""
    text = (Path(__file__).parent.parent / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("dgbench "):
                lines.append(line)
    return lines


def test_every_dgbench_command_in_the_readme_parses():
    """The README's commands use flags and subcommands that exist (docs that match the code)."""
    import shlex

    from dgbench.cli.parser import build_parser

    commands = _readme_commands()
    assert len(commands) > 20
    parser = build_parser()
    for line in commands:
        argv = shlex.split(line)[1:]
        try:
            ns, extra = parser.parse_known_args(argv)
        except SystemExit:
            pytest.fail(f"README command does not parse: {line}")
        assert all("=" in x and not x.startswith("-") for x in extra), line

"""The README's recipes, run as written: adding an augmenter inside the repo, and a plugin's
module. What the README tells a user to do must pass the suite it describes."""

from __future__ import annotations

import contextlib
import itertools
import re
import sys
import types
from pathlib import Path
from typing import Iterator

import pytest

from dgbench.cli import main
from dgbench.augmenters import AUGMENTERS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PACS = REPO.parent / "shared" / "data" / "PACS"  # the real copy, where there is one


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


#: what the README's two examples register, and the modules that register them
README_NAMES = ("gaussnoise", "featdrop")
README_MODULES = ("dgbench.augmenters.gaussnoise", "my_dg_plugin")


@contextlib.contextmanager
def readme_augmenters() -> Iterator[list[str]]:
    """The README's augmenter (as a built-in module would be) and the plugin's, registered for
    the block; afterwards the registry and ``sys.modules`` are exactly as before. A user who
    followed the recipe already has a ``gaussnoise`` of their own: it is set aside while the
    README's copy is tested, then put back."""
    AUGMENTERS.names()  # built-ins and entry points loaded now, so the snapshot holds them
    entries = dict(AUGMENTERS._entries)  # the registry's own dict: put back as it was, in order
    modules = {m: sys.modules[m] for m in README_MODULES if m in sys.modules}
    try:
        for name in README_NAMES:
            AUGMENTERS.remove(name)
        load_as(README_MODULES[0], code_block("# augmenters/gaussnoise.py"))
        load_as(README_MODULES[1], code_block("# my-dg-plugin/my_dg_plugin.py"))
        yield list(README_NAMES)
    finally:
        AUGMENTERS._entries.clear()
        AUGMENTERS._entries.update(entries)
        for module in README_MODULES:
            if module in modules:
                sys.modules[module] = modules[module]
            else:
                sys.modules.pop(module, None)


@pytest.fixture
def registered() -> Iterator[list[str]]:
    with readme_augmenters() as names:
        yield names


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


def test_the_readme_augmenters_leave_the_registry_as_they_found_it():
    """With no gaussnoise of the user's, none is left behind; with one (the README's recipe
    followed in this tree), the very same entry and module are there afterwards."""
    had = "gaussnoise" in AUGMENTERS
    if not had:
        names = AUGMENTERS.names()
        with readme_augmenters():
            assert {"gaussnoise", "featdrop"} <= set(AUGMENTERS.names())
        assert AUGMENTERS.names() == names
        assert not any(m in sys.modules for m in README_MODULES)
        # stand in for the user's own augmenters/gaussnoise.py, imported by augmenters/__init__
        load_as(README_MODULES[0], code_block("# augmenters/gaussnoise.py"))
    try:
        entries, own = AUGMENTERS.entries(), sys.modules[README_MODULES[0]]
        users = AUGMENTERS.get("gaussnoise")
        with readme_augmenters():
            assert AUGMENTERS.get("gaussnoise") is not users  # the README's copy
        assert AUGMENTERS.entries() == entries
        assert AUGMENTERS.get("gaussnoise") is users
        assert sys.modules[README_MODULES[0]] is own
    finally:
        if not had:
            AUGMENTERS.remove("gaussnoise")
            sys.modules.pop(README_MODULES[0], None)


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
    import shlex
    import subprocess

    block = code_block('python -c "import torch, torchvision; torch.save(')
    make, run = [line for line in block.splitlines() if line.strip()]
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(make)
    assert argv[0] == "python"
    # this interpreter, not whichever `python` is first on PATH (none outside a venv)
    subprocess.run([sys.executable, *argv[1:]], check=True)
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


@pytest.mark.skipif(not PACS.is_dir(), reason="real PACS not in ../shared/data/PACS")
def test_the_readme_inspect_table_is_what_the_command_prints(tmp_path, monkeypatch, capsys):
    """The README's `dgbench inspect` command, run as written (the figure to a scratch file):
    its table is the README's, cell for cell, and so are the images it names."""
    import shlex

    (line,) = [c for c in _readme_commands() if c.startswith("dgbench inspect ")]
    argv = shlex.split(line)[1:]
    argv[argv.index("--plot") + 1] = str(tmp_path / "inspect.png")
    monkeypatch.chdir(REPO)  # the README's --data-root is relative to the repository
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    printed = [row.split() for row in out[4:] if row and not row.startswith("histograms")]
    section = README[README.index(line[:40]):README.index("(docs/inspect-pacs.png)")]
    rows = [[cell.strip() for cell in row.strip("|").split(" | ")]
            for row in section.splitlines() if row.startswith("| ") and "mean" not in row]
    assert rows == printed and len(rows) == 6
    for image in re.findall(r"`(\w+ #\d+)`", section):
        assert image in out[0]
    assert (tmp_path / "inspect.png").stat().st_size > 10_000


def test_the_readme_lists_every_augmenter():
    """The augmenter list of "Augmenters and where they go" names every built-in augmenter
    (the README's own gaussnoise example aside, for a tree that follows its recipe)."""
    section = README[README.index("## Augmenters and where they go"):]
    listed = set(re.findall(r"`([a-z]+)`", section[:section.index("\n\n", 40)]))
    builtin = {e.name for e in AUGMENTERS.entries() if e.source.startswith("dgbench.augmenters")}
    assert builtin - {"gaussnoise"} <= listed, "the README's augmenter list misses some"


def test_list_presets_shows_each_description_whole(monkeypatch, capsys):
    """`dgbench list presets` (a README command) prints each preset's leading comment in
    full, wrapped to the terminal, its example commands unbroken."""
    from dgbench.config.sources import PRESETS

    monkeypatch.setenv("COLUMNS", "70")
    assert main(["list", "presets"]) == 0
    out = capsys.readouterr().out
    assert all(len(row) <= 70 or "dgbench " in row for row in out.splitlines())
    flat = " ".join(out.split())
    for preset in PRESETS.iterdir():
        comment = []
        for row in preset.read_text().splitlines():
            if not row.startswith("#"):
                break
            comment.append(row[1:])
        assert " ".join(" ".join(comment).split()) in flat, preset.name
    assert "      dgbench run --preset pacs-lodo-cpu --data-root ../shared/data/PACS\n" in out

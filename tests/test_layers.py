"""The house's layers hold: every import of every module (at the top and inside functions) goes
down the data flow or stays in its part, nothing imports in a circle, imports inside functions
say why they are there, and reading results needs no torch.

The layers, lowest first (a part may import its own modules and any part of a lower layer;
parts of one layer know nothing of each other):

    core (and the package root) < config < data, augmenters < datasets, models < tasks < plan
    < store < run < results < report < cli
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = [["core"], ["config"], ["data", "augmenters"], ["datasets", "models"], ["tasks"],
          ["plan"], ["store"], ["run"], ["results"], ["report"], ["cli"]]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
#: the folders that hold a task's own code: above them nothing asks which task it is
TASK_NAMES = {"reid", "classification"}
#: results-side views: how each task's records become rows (named after their task, on purpose)
TASK_VIEWS = "dgbench.results.views"


def module_files() -> dict[str, Path]:
    """Every module of the installed tree, by dotted name (root folders as dgbench.*)."""
    files = {}
    for root, prefix in ((REPO / "dgbench", "dgbench"), (REPO / "augmenters", "dgbench.augmenters"),
                         (REPO / "datasets", "dgbench.datasets")):
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join([prefix, *parts])] = path
    return files


MODULES = module_files()


def part_of(module: str) -> str:
    """The part (core, config, ...) a dgbench module belongs to; the package root is core's."""
    bits = module.split(".")
    if module == "dgbench.__main__":  # `python -m dgbench`: the command line
        return "cli"
    return bits[1] if len(bits) > 1 and bits[1] in RANK else "core"


def package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported dgbench module, line, inside a function) for each import of ``module``."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    found = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, nested) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    pkg = package_of(module).split(".")
                    pkg = pkg[:len(pkg) - child.level + 1]
                    base = ".".join([*pkg, base] if base else pkg)
                for alias in child.names:  # `from pkg import mod` imports the module mod
                    sub = f"{base}.{alias.name}"
                    found.append((sub if sub in MODULES else base, child.lineno, nested))
            visit(child, inner)

    visit(tree, False)
    return [(name, line, nested) for name, line, nested in found
            if name == "dgbench" or name.startswith("dgbench.")]


GRAPH = {m: imports(m) for m in MODULES}


def test_the_tree_is_what_this_test_reads():
    """Every folder of dgbench/ is a part of a layer (a new folder must be placed)."""
    folders = {p.name for p in (REPO / "dgbench").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders | {"augmenters", "datasets"} == set(RANK), "place the new folder in LAYERS"
    assert len(MODULES) > 60 and all(m in GRAPH for m in MODULES)


def test_no_import_climbs_a_layer_or_crosses_to_a_sibling():
    wrong = []
    for module, found in GRAPH.items():
        here = part_of(module)
        for name, line, _ in found:
            there = part_of(name)
            if there != here and RANK[there] >= RANK[here]:
                wrong.append(f"{MODULES[module].relative_to(REPO)}:{line} ({here}) imports "
                             f"{name} ({there})")
    assert wrong == []


def cycles() -> list[list[str]]:
    """The import circles between modules (Tarjan's strongly connected components)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    edges = {m: sorted({n for n, _, _ in found if n in MODULES and n != m})
             for m, found in GRAPH.items()}

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v), on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges)))
    for v in edges:
        if v not in index:
            strong(v)
    return out


def test_nothing_imports_in_a_circle():
    """A package's __init__ importing its modules is the one way in: a module of the package
    importing the package itself (rather than the module it needs) would close a circle."""
    assert cycles() == []


def test_the_cycle_finder_finds_a_cycle(monkeypatch):
    monkeypatch.setitem(GRAPH, "dgbench.core.errors", [("dgbench.core.files", 1, False)])
    monkeypatch.setitem(GRAPH, "dgbench.core.files", [("dgbench.core.errors", 1, False)])
    assert ["dgbench.core.errors", "dgbench.core.files"] in cycles()


def function_imports() -> list[tuple[Path, int, bool]]:
    """(file, line, commented) of every import inside a function, any module (torch's too).
    Consecutive imports are one group, and the group's first line carries its comment."""
    out = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        for func in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            blocks = [v for node in ast.walk(func) for _, v in ast.iter_fields(node)
                      if isinstance(v, list) and v and isinstance(v[0], ast.stmt)]
            for block in blocks:
                said = False
                for stmt in block:
                    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                        said = said or "# lazy: " in lines[stmt.end_lineno - 1]
                        out.append((path, stmt.lineno, said))
                    else:
                        said = False
    return sorted(set(out))


def test_every_import_inside_a_function_says_what_it_keeps_off_the_start_up_path():
    """``# lazy: <the heavy or optional dependency>`` on the (last) line of the import, or of
    the first of a run of imports."""
    bare = [f"{p.relative_to(REPO)}:{n}" for p, n, said in function_imports() if not said]
    assert bare == []
    assert len(function_imports()) > 20  # the reader sees the imports it checks


def test_above_the_tasks_nothing_asks_which_task_it_is():
    """Parts above tasks/ ask the task object (its view, its rules), never its name; only the
    results-side views, one per task, are named after theirs."""
    wrong = []
    for module, path in MODULES.items():
        if RANK[part_of(module)] <= RANK["tasks"] or module.startswith(TASK_VIEWS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Compare):
                consts = {n.value for n in (node.left, *node.comparators) if isinstance(n, ast.Constant)}
                if TASK_NAMES & consts:
                    wrong.append(f"{where} compares with a task name")
            elif isinstance(node, ast.Attribute) and node.attr in ("reid", "is_reid"):
                wrong.append(f"{where} reads .{node.attr}")
            elif isinstance(node, ast.Name) and node.id in ("ReIDDataset", "ReIDNet"):
                wrong.append(f"{where} names {node.id}")
        for name, line, _ in GRAPH[module]:
            if name in ("dgbench.data.reid", "dgbench.models.reidnet", "dgbench.tasks.reid"):
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert wrong == []


def test_data_knows_no_model():
    wrong = [f"{m} imports {n}" for m in MODULES if part_of(m) in ("data", "datasets")
             for n, _, _ in GRAPH[m] if part_of(n) in ("models", "tasks")]
    assert wrong == []


def test_pyproject_installs_every_package():
    """Each folder with an __init__.py is listed, so a wheel holds the whole tree."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    assert packages == listed


READERS = {
    "table": ["table", "{exp}", "--format", "latex", "--error", "ci95", "--mark-significant"],
    "compare": ["compare", "{exp}", "--baseline", "none"],
    "plot": ["plot", "{exp}", "--kind", "bars", "--out", "{tmp}/bars.png"],
    "report": ["report", "{results}", "--out", "{tmp}/report.html"],
}
PROBE = """
import json, sys
from dgbench.cli import main
code = main({argv!r}) if {argv!r} else (__import__("dgbench.results").results.load({results!r}), 0)[1]
heavy = sorted(m for m in ("torch", "torchvision", "timm") if m in sys.modules)
print(json.dumps({{"rc": code, "heavy": heavy}}), file=sys.stderr)
"""


@pytest.mark.parametrize("command", [*READERS, "results.load"])
def test_reading_results_imports_no_torch(command, tmp_path):
    results = REPO / "tests" / "data" / "results"
    exp = results / "digits-lodo"
    argv = [a.format(exp=exp, tmp=tmp_path, results=results) for a in READERS.get(command, [])]
    if command == "plot":
        pytest.importorskip("matplotlib")
    proc = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, results=str(results))],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    last = proc.stderr.strip().splitlines()[-1]
    assert json.loads(last) == {"rc": 0, "heavy": []}, proc.stderr[-2000:]


def test_the_probe_sees_torch_when_it_is_imported(tmp_path):
    """The check above can fail: a command that trains does import torch."""
    code = "import sys, dgbench.run.loop; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_every_module_is_imported_somewhere_or_is_an_entry():
    """No module is dead weight: each is imported by another, or is an entry point."""
    imported = defaultdict(set)
    for module, found in GRAPH.items():
        for name, _, _ in found:
            imported[name].add(module)
    orphans = [m for m in MODULES if m not in imported and m != "dgbench.__main__"
               and MODULES[m].name != "__init__.py"]
    assert orphans == []

"""The package's layout as a specification, read from its import graph (`docs/design.md`, "Layout"):

core <- each task folder <- tasks.py (the registry) <- entry points; no import between task folders except a task
built on others (pixels on breakout's net and sampler; gym_tokens on flappy's Transformer and pixels' Minari reader);
no import circle; a function-local import only where it keeps a command's start-up fast, with its reason on the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "worldmodels"
TASK_FOLDERS = ("breakout", "flappy", "pixels", "gym_tokens")
# a task over other tasks' modules (gym_pixels: Breakout's denoiser on any game; gym_tokens: Flappy's Transformer on
# any recording, read with gym_pixels' Minari reader)
BUILT_ON = {"pixels": ("breakout",), "gym_tokens": ("flappy", "pixels")}
BESIDE_ENTRY_POINTS = ("dream",)  # packages over both tasks' modules (not the registry): the dream environments
RUNNERS = ("fit", "benchmarks")  # the heavy halves of train and bench, imported once their flags are checked
ENTRY_POINTS = ("train", "export", "evaluate", "bench", "compare", "play", "collect", "record")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported project module, line, inside a function) for every `worldmodels` import in the file."""
    tree = ast.parse(path.read_text())
    local = {id(node) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(fn)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        modules = {n for n in names if n.split(".")[0] == "worldmodels" and module_exists(n)}
        found += [(m, node.lineno, id(node) in local) for m in modules]
    return found


def module_exists(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer(module: str) -> str:
    """core, a task folder's name, tasks, runner (what `train` and `bench` run), entry, or package (__init__.py)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    if parts[1] in ("core", *TASK_FOLDERS):
        return parts[1]
    if parts[1] == "tasks":
        return "tasks"
    if parts[1] in BESIDE_ENTRY_POINTS:
        return "dream"
    if parts[1] in RUNNERS:
        return "runner"
    assert parts[1] in ENTRY_POINTS, f"{module}: a top-level module that is not an entry point or the registry"
    return "entry"


RANK = {"package": 0, "core": 1, "breakout": 2, "flappy": 2, "pixels": 2.5, "gym_tokens": 2.75, "tasks": 3, "dream": 3,
        "runner": 4, "entry": 5}


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, int, bool]]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_nothing_downstream_is_imported_upstream(graph):
    wrong = [f"{a} imports {b}" for a, edges in graph.items() for b, _, _ in edges
             if RANK[layer(b)] > RANK[layer(a)] or (layer(a) == layer(b) in ("entry", "runner") and a != b)]
    assert wrong == []


def test_task_folders_never_import_each_other(graph):
    crossing = [f"{a} imports {b}" for a, edges in graph.items() for b, _, _ in edges
                if layer(a) in TASK_FOLDERS and layer(b) in TASK_FOLDERS and layer(a) != layer(b)
                and layer(b) not in BUILT_ON.get(layer(a), ())]
    assert crossing == []


def test_there_is_no_import_circle(graph):
    edges = {a: {b for b, _, _ in e if b != a and b in graph} for a, e in graph.items()}
    # A package's __init__ runs before its submodules, so a submodule importing its own package is not a circle.
    for a in edges:
        edges[a] = {b for b in edges[a] if not a.startswith(b + ".")}
    done, stack, circles = set(), [], []

    def visit(node):
        if node in stack:
            circles.append(" -> ".join(stack[stack.index(node):] + [node]))
            return
        if node in done:
            return
        stack.append(node)
        for nxt in sorted(edges[node]):
            visit(nxt)
        stack.pop()
        done.add(node)

    for node in sorted(edges):
        visit(node)
    assert circles == []


def test_every_function_local_import_says_why():
    """An import inside a function hides a dependency; the only accepted reason is start-up time (a heavy module
    that only some commands need), written as a comment on the import's line."""
    silent = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                silent += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}" for node in ast.walk(fn)
                           if isinstance(node, (ast.Import, ast.ImportFrom)) and "#" not in lines[node.lineno - 1]]
    assert sorted(set(silent)) == []

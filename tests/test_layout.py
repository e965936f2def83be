"""The structure of the code, checked from its imports with ``ast``: no import cycles (lazy
imports inside functions count), no module importing another package's private module, and no
source file over 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"gravuq": ROOT / "gravuq", "gravuq_cli": ROOT / "cli"}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of gravuq and the CLI."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> set[str]:
    """The project modules that module ``name`` imports, anywhere in its body."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if _is_package(name) else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                targets.add(submodule if submodule in MODULES else module)
    return {target for target in targets if target in MODULES and target != name}


GRAPH = {name: _imports(name) for name in MODULES}


def test_there_are_modules_to_check():
    assert len(MODULES) > 30 and "gravuq.pipeline" in MODULES and "gravuq_cli.main" in MODULES


def test_no_import_cycles():
    cycles = []
    state: dict[str, int] = {}  # 1 on the current path, 2 finished

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_private_modules_are_imported_only_within_their_package():
    offences = []
    for name, targets in GRAPH.items():
        own = name if _is_package(name) else name.rsplit(".", 1)[0]
        for target in targets:
            parent, _, last = target.rpartition(".")
            if last.startswith("_") and parent != own:
                offences.append(f"{name} imports {target}")
    assert not offences, "\n".join(offences)


def test_no_source_file_over_500_lines():
    files = [path for folder in ("gravuq", "cli", "tests", "benchmarks") for path in (ROOT / folder).rglob("*.py")]
    long = {str(path.relative_to(ROOT)): n for path in files if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long

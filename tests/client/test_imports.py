"""Import boundaries: ``client`` and ``relay`` meet only at the CLI mount point.

``kokshared`` (helpers both use) imports neither; ``relay`` never imports ``client``;
``client`` imports ``relay`` only in ``client/cli.py`` (which mounts ``kok relay ...``);
and the modules of ``client`` import each other without a cycle, lazy imports inside
functions included (only ``if TYPE_CHECKING:`` blocks, which never run, are left out).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MOUNT_POINT = "client/cli.py"


def _runtime_imports(path: Path) -> set[str]:
    """Absolute module names ``path`` imports when it runs (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
                if node.module is None:  # from . import a, b
                    names.update(f"{module}.{alias.name}" for alias in node.names)
                    continue
            else:
                module = node.module or ""
            names.add(module)
    return names


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _importers(package: str, target: str) -> set[str]:
    return {str(path.relative_to(REPO)) for path in _modules(package).values()
            if any(n == target or n.startswith(target + ".") for n in _runtime_imports(path))}


def test_relay_never_imports_the_client() -> None:
    assert _importers("relay", "client") == set()


def test_the_client_imports_the_relay_only_at_the_cli_mount_point() -> None:
    assert _importers("client", "relay") <= {MOUNT_POINT}


def test_kokshared_imports_neither() -> None:
    for package in ("client", "relay", "protocol"):
        assert _importers("kokshared", package) == set()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def _client_graph() -> dict[str, set[str]]:
    modules = _modules("client")
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for imported in _runtime_imports(path):
            # "from . import lifecycle" names a module; "from .x import f" names x
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported != "client":
                deps.add(imported)
        graph[name] = deps
    return graph


def test_no_import_cycle_inside_the_client() -> None:
    assert _cycles(_client_graph()) == []


def test_the_checks_can_fail() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    tree_file = REPO / "client" / "cli.py"
    assert any(n.startswith("relay") for n in _runtime_imports(tree_file))

"""``protocol/`` is sans-I/O: no event loop, network, files, logging, clock or OS randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import protocol

PACKAGE = Path(protocol.__file__).parent
FORBIDDEN = {
    "asyncio", "aiohttp", "aiosqlite", "logging", "structlog", "time", "datetime", "os",
    "secrets", "random", "socket", "pathlib", "io", "subprocess", "threading", "tempfile",
    "shutil", "urllib", "http", "ssl", "select", "signal", "sqlite3",
}
# pure string handling inside a forbidden package (urllib.request is I/O, urllib.parse is not)
ALLOWED = {"urllib.parse"}


def _modules() -> list[Path]:
    # vectors/generate.py is a tool that writes files, not part of the package
    return sorted(p for p in PACKAGE.glob("*.py"))


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names
                         if alias.name not in ALLOWED)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module not in ALLOWED:
                names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "__import__"):
            names.add("__import__")
    return names


def test_every_module_is_checked() -> None:
    names = {p.name for p in _modules()}
    assert {"encoding.py", "keylog.py", "message.py", "stream.py", "__init__.py"} <= names


def test_protocol_imports_no_io_clock_or_randomness() -> None:
    banned = FORBIDDEN | {"__import__"}
    offenders = {
        path.name: sorted(_imported(ast.parse(path.read_text(), str(path))) & banned)
        for path in _modules()
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_the_checker_catches_a_forbidden_import() -> None:
    tree = ast.parse("import os.path\nfrom time import time\nfrom . import labels\n"
                     "from urllib.parse import urlsplit\nfrom urllib.request import urlopen\n")
    assert _imported(tree) & FORBIDDEN == {"os", "time", "urllib"}
    assert _imported(ast.parse("from urllib.parse import urlsplit\n")) & FORBIDDEN == set()


def test_protocol_does_not_read_randomness_through_nacl() -> None:
    # nacl.utils.random and the key generators without a seed read the OS random source
    for path in _modules():
        text = path.read_text()
        for call in ("nacl.utils", "random(", ".generate(", "crypto_box_keypair(",
                     "crypto_sign_keypair(", "randombytes"):
            assert call not in text, f"{path.name} uses {call}"

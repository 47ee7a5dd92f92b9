"""The client's modules work on a ``ClientContext``, never on ``Client`` itself.

Sending, receiving, admin, lifecycle, verification, identity keys, attachments and the
local views take the context (or the few parts they need). Checked on the source: none of
them imports ``client._client`` or names ``Client`` (``TYPE_CHECKING`` imports included,
so a module cannot quietly start to depend on the front door again), and none reads a
private member of another object (``client._secret``, ``ctx.link._api``): what a module
needs must be a public part of the context. Only the front door and its skins (the CLI,
the demo, the staff app) may use ``Client``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "client"

# The modules that take the context; a new one of their kind belongs here too.
CONTEXT_MODULES = (
    "admin", "attachment_stream", "conversations", "devices", "drops", "identity", "lifecycle",
    "orgs_list", "receiving", "sending", "sent_items", "verification",
)
# Where ``Client`` may be used: the front door itself and what is built on top of it.
FRONT = {"__init__.py", "__main__.py", "_client.py", "demo.py"}


def _may_use_client(path: Path) -> bool:
    rel = path.relative_to(CLIENT)
    return rel.parts[0] == "app" or rel.name in FRONT or rel.name.startswith("cli")


def client_uses(source: str) -> list[str]:
    """Every place ``source`` imports ``client._client`` or names ``Client``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[-1] == "_client" or module == "client._client":
                found.append(f"line {node.lineno}: imports {module}")
            found += [f"line {node.lineno}: imports Client" for alias in node.names
                      if alias.name == "Client"]
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: imports {alias.name}" for alias in node.names
                      if alias.name.endswith("._client")]
        elif isinstance(node, ast.Name) and node.id == "Client":
            found.append(f"line {node.lineno}: names Client")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                node.value == "Client" or node.value.startswith("Client[")):
            found.append(f"line {node.lineno}: names Client in a string annotation")
    return found


def private_reads(source: str) -> list[str]:
    """Every ``x._name`` in ``source`` where ``x`` is not ``self`` or ``cls`` (dunders aside)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not (node.attr.startswith("__") and node.attr.endswith("__"))
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def _source(name: str) -> str:
    return (CLIENT / f"{name}.py").read_text(encoding="utf-8")


def test_context_modules_never_use_the_client() -> None:
    uses = {name: client_uses(_source(name)) for name in CONTEXT_MODULES}
    assert {name: found for name, found in uses.items() if found} == {}


def test_context_modules_read_no_private_member() -> None:
    reads = {name: private_reads(_source(name)) for name in CONTEXT_MODULES}
    assert {name: found for name, found in reads.items() if found} == {}


def test_only_the_front_door_and_its_skins_use_the_client() -> None:
    users = {str(path.relative_to(REPO)) for path in sorted(CLIENT.rglob("*.py"))
             if not _may_use_client(path) and client_uses(path.read_text(encoding="utf-8"))}
    assert users == set()


def test_the_context_modules_exist() -> None:
    # a renamed module must not leave the checks above looking at nothing
    assert all((CLIENT / f"{name}.py").is_file() for name in CONTEXT_MODULES)


def test_the_checks_can_fail() -> None:
    old = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ._client import Client\n"
        "def key(client: Client) -> bytes:\n"
        "    return client._secret('network')\n"
    )
    assert sorted(client_uses(old)) == ["line 3: imports Client", "line 3: imports _client",
                                        "line 4: names Client"]
    assert private_reads(old) == ["line 5: client._secret"]
    assert private_reads("def f(ctx):\n    return ctx.link._api\n") == [
        "line 2: ctx.link._api"]
    assert private_reads("class A:\n    def f(self):\n        return self._x.__class__\n") == []
    assert client_uses("def f(c: 'Client') -> None: ...\n") == [
        "line 1: names Client in a string annotation"]

"""Which fields each of the relay's log events can carry, read from the relay's source.

A logger is any module-level name bound to ``structlog.get_logger(...)``. For each call
``<logger>.<level>("event", key=value, **spread)`` the explicit keywords are fields of that
event. A ``**spread`` must be resolvable: a local dict built in the same function (its
literal keys and every ``name["key"] = ...``), or ``<x>.__dict__`` of a dataclass that
``SPREAD_TYPES`` names for that event. Anything else is reported as unresolvable, so a new
way of adding fields cannot slip past the inventory.
"""

from __future__ import annotations

import ast
import dataclasses
from collections import defaultdict
from pathlib import Path

from relay.store import PurgeCounts

RELAY = Path(__file__).resolve().parents[2] / "relay"
LEVELS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "msg"}
# ``log.info("purged", **counts.__dict__)``: the fields are this dataclass's fields.
SPREAD_TYPES: dict[str, type] = {"purged": PurgeCounts}


class Unresolvable(Exception):
    """A log call whose fields this reader cannot determine."""


def _loggers(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute)
                and node.value.func.attr == "get_logger"):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _dict_keys(function: ast.AST, name: str) -> set[str]:
    keys: set[str] = set()
    for node in ast.walk(function):
        value = None
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
        elif (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
              and node.target.id == name):
            value = node.value
        if isinstance(value, ast.Dict):
            keys |= {str(k.value) for k in value.keys if isinstance(k, ast.Constant)}
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                        and target.value.id == name and isinstance(target.slice, ast.Constant)):
                    keys.add(str(target.slice.value))
    return keys


def log_fields(root: Path = RELAY) -> dict[str, set[str]]:
    """event name -> every field name a call in ``root`` can give it."""
    events: dict[str, set[str]] = defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        loggers = _loggers(tree)
        functions = [n for n in ast.walk(tree)
                     if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        for function in functions:
            for call in ast.walk(function):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr in LEVELS and isinstance(call.func.value, ast.Name)
                        and call.func.value.id in loggers):
                    continue
                where = f"{path.relative_to(root.parent)}:{call.lineno}"
                if not (call.args and isinstance(call.args[0], ast.Constant)):
                    raise Unresolvable(f"{where}: the event name is not a string literal")
                event = str(call.args[0].value)
                fields = events[event]
                for keyword in call.keywords:
                    if keyword.arg is not None:
                        fields.add(keyword.arg)
                    elif isinstance(keyword.value, ast.Name):
                        keys = _dict_keys(function, keyword.value.id)
                        if not keys:
                            raise Unresolvable(f"{where}: cannot tell the keys of "
                                               f"**{keyword.value.id}")
                        fields |= keys
                    elif (isinstance(keyword.value, ast.Attribute)
                          and keyword.value.attr == "__dict__" and event in SPREAD_TYPES):
                        fields |= {f.name for f in dataclasses.fields(SPREAD_TYPES[event])}
                    else:
                        raise Unresolvable(f"{where}: cannot tell the fields of event {event!r}"
                                           " (name them, or teach tests/privacy/logfields.py)")
    return dict(events)

"""The privacy inventory as docs/privacy.md states it, parsed from the document itself.

Each inventory table follows a marker line ``<!-- inventory: NAME -->``; the first cell of
each row names one item in backticks (``table.column``, a file name, ``event.field``).
Parsing the document, rather than keeping a second list here, means the document and the
tests cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"
_MARKER = re.compile(r"^<!-- inventory: ([a-z0-9-]+) -->$")
_ITEM = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def inventory(name: str, doc: Path = DOC) -> set[str]:
    """The items listed in the inventory table ``name`` (fails if there is no such table)."""
    lines = doc.read_text("utf-8").splitlines()
    starts = [i for i, line in enumerate(lines)
              if (found := _MARKER.match(line.strip())) and found.group(1) == name]
    if len(starts) != 1:
        raise AssertionError(f"docs/privacy.md must have exactly one inventory table {name!r}")
    start = starts[0]
    items: set[str] = set()
    for line in lines[start + 1:]:
        if not line.startswith("|"):
            if items:
                break
            continue
        found = _ITEM.match(line)
        if found:
            items.add(found.group(1))
    if not items:
        raise AssertionError(f"the inventory table {name!r} in docs/privacy.md lists nothing")
    return items


def pattern_of(item: str) -> re.Pattern[str]:
    """An inventory name with ``<placeholders>`` as a regular expression (``<id>`` -> hex)."""
    parts = re.split(r"(<[a-z]+>)", item)
    regex = "".join(
        "[0-9a-f]+" if part == "<id>" else "[^/]+" if part.startswith("<") else re.escape(part)
        for part in parts)
    return re.compile(regex + r"\Z")


def unlisted(found: set[str], listed: set[str]) -> set[str]:
    """Found names that match no listed item (placeholders allowed in the listed items)."""
    patterns = [pattern_of(item) for item in listed]
    return {name for name in found if not any(p.match(name) for p in patterns)}


def unseen(listed: set[str], found: set[str]) -> set[str]:
    """Listed items that match none of the found names."""
    return {item for item in listed if not any(pattern_of(item).match(n) for n in found)}

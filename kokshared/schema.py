"""Numbered schema files (``NNN_name.sql``) shipped as package data: the upgrade path.

The version recorded in a database is the number of the last file applied, so the files
must be numbered 001, 002, ... without gaps.
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"(\d{3})_[a-z0-9_]+\.sql")


def schema_files(package: str, folder: str = "schema") -> list[tuple[int, str]]:
    """(version, SQL text) of every schema file in ``<package>/<folder>``, in order."""
    out = []
    for entry in (resources.files(package) / folder).iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            out.append((int(match.group(1)), entry.read_text("utf-8")))
    out.sort()
    versions = [v for v, _ in out]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"schema files must be numbered 001, 002, ... without gaps: {versions}")
    return out

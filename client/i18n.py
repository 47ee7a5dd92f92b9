"""Every sentence a person reads, in English and German.

The catalogues are ``client/locale/en.json`` and ``client/locale/de.json``: flat maps from a
key to a ``str.format`` template. The language comes from the environment the way POSIX
programs choose it (``LC_ALL``, then ``LC_MESSAGES``, then ``LANG``): German when the first
one that is set starts with ``de``, English otherwise. A test checks that both catalogues
have the same keys and the same placeholders.
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from importlib import resources
from typing import Any

from .safetext import printable

LANGUAGES = ("en", "de")


def language() -> str:
    """``de`` if the locale environment asks for German, else ``en``."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return "de" if value.lower().startswith("de") else "en"
    return "en"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The message templates of one language."""
    text = resources.files("client").joinpath("locale", f"{lang}.json").read_text("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise RuntimeError(f"the {lang} catalogue is not a JSON object")
    return {str(k): str(v) for k, v in data.items()}


def has_key(key: str) -> bool:
    """True if ``key`` is in the English catalogue (the reference)."""
    return key in catalogue("en")


def t(key: str, **params: Any) -> str:
    """The template ``key`` in the person's language, filled with ``params``."""
    lang = language()
    template = catalogue(lang).get(key) or catalogue("en").get(key)
    if template is None:
        # A missing key is a bug; show it rather than crash in the middle of an error path.
        return key + (" " + repr(params) if params else "")
    safe = {k: printable(v) if isinstance(v, str) else v for k, v in params.items()}
    try:
        return template.format(**safe)
    except (KeyError, IndexError, ValueError):
        return template


def local_time(ts: int | None) -> str:
    """A Unix time as local date, time and time zone, ``YYYY-MM-DD HH:MM CET`` (the same in
    both languages): with colleagues in other zones and summer time, the zone says which."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(ts))


def duration(seconds: int) -> str:
    """A rough duration in the person's language: days, hours or minutes."""
    if seconds >= 86400 and seconds % 86400 == 0:
        return t("unit.days", n=seconds // 86400)
    if seconds >= 3600:
        return t("unit.hours", n=seconds // 3600)
    return t("unit.minutes", n=max(1, seconds // 60))


SIZE_UNITS = ("B", "KB", "MB", "GB", "TB")


def file_size(n: float) -> str:
    """Bytes in decimal units as the language writes them: ``57.6 MB`` / ``57,6 MB``."""
    unit = 0
    while n >= 1000 and unit < len(SIZE_UNITS) - 1:
        n /= 1000
        unit += 1
    text = f"{n:.0f}" if unit == 0 else f"{n:.1f}"
    if language() == "de":
        text = text.replace(".", ",")
    return f"{text} {SIZE_UNITS[unit]}"

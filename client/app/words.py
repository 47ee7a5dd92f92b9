"""The app's words: the CLI's gettext catalogues (``client/locale``), chosen per request.

The CLI picks its language from the environment; a browser says which it wants in
``Accept-Language``, and the person may switch (a cookie). Both languages come from the
same catalogue files as every CLI sentence, plural forms included (``_.n(key, count)``),
so there is one set of strings to keep.
Times carry their time zone and sizes use the language's decimal sign.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..i18n import LANGUAGES, has_key, translate, translate_n

DEFAULT_LANGUAGE = "en"


def negotiate(accept_language: str | None, chosen: str | None) -> str:
    """The person's choice (cookie) if valid, else the best of ``Accept-Language``."""
    if chosen in LANGUAGES:
        return str(chosen)
    best, best_q = DEFAULT_LANGUAGE, -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-", 1)[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        q -= position * 1e-6  # earlier wins among equals
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best


@dataclass(frozen=True)
class Words:
    """Sentences, times and sizes in one language."""

    lang: str

    def __call__(self, key: str, **params: Any) -> str:
        return translate(self.lang, key, **params)

    def n(self, key: str, count: int, **params: Any) -> str:
        """A sentence about ``count`` things, in the language's plural form for it."""
        return translate_n(self.lang, key, count, **params)

    def time(self, ts: int | None) -> str:
        """Local date and time with the zone, as people of this language write it."""
        if ts is None:
            return "–"
        local = time.localtime(ts)
        if self.lang == "de":
            return time.strftime("%d.%m.%Y, %H:%M %Z", local)
        return time.strftime("%d %b %Y, %H:%M %Z", local)

    @staticmethod
    def iso(ts: int | None) -> str:
        """The machine-readable form for ``<time datetime=...>``."""
        if ts is None:
            return ""
        return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts))

    def size(self, n: int) -> str:
        """``57.6 MB`` / ``57,6 MB``: decimal units, one decimal below 100."""
        value, unit = float(n), "B"
        for unit in ("B", "kB", "MB", "GB"):
            if value < 1000 or unit == "GB":
                break
            value /= 1000
        text = f"{int(value)}" if unit == "B" or value >= 100 else f"{value:.1f}"
        if self.lang == "de":
            text = text.replace(".", ",")
        return f"{text}\u00a0{unit}"

    def error(self, exc: Exception) -> str:
        """A ``KokError``'s sentence in this language (its code and parameters are kept)."""
        code = getattr(exc, "code", None)
        params = getattr(exc, "params", None)
        if code and isinstance(params, dict) and has_key(f"error.{code}"):
            return self(f"error.{code}", **params)
        return str(exc)

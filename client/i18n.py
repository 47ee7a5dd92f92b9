"""Every sentence a person reads, in English and German, with plural forms.

The catalogues are gettext files: ``client/locale/en.po`` and ``client/locale/de.po``. Their
msgids are stable keys (``inbox.count``), not English sentences, and each language -
English too - has its ``msgstr``: the ~600 call sites and the error codes that pick
``error.<code>`` keep working unchanged, and improving an English sentence does not orphan
its German one. A sentence about a number of things is a plural entry (``msgid_plural``,
one ``msgstr[i]`` per form of the language's ``Plural-Forms`` header) and is called with
``tn(key, n)``, so "1 new message" / "2 new messages" and "1 neue Nachricht" / "2 neue
Nachrichten" come out right. Templates use ``str.format`` placeholders (``{n}``).

The ``.po`` files are read at run time with Babel (``read_po``), once per language, into a
``babel.support.Translations`` (a ``gettext.GNUTranslations``, which knows the plural
rule). Compiling ``.mo`` files at build time would need a build step that an editable
install from a fresh clone (``make``) does not run, and the ``.mo`` could go stale beside
the ``.po`` that people edit; reading ~600 entries costs a few milliseconds per process.

Click's own words ("Usage:", "Missing option", ...) come from ``locale/click-de.po``,
keyed by click's English msgids: ``use_for_click()`` points click's ``gettext`` calls at it.

The language comes from the environment the way POSIX programs choose it (``LC_ALL``, then
``LC_MESSAGES``, then ``LANG``): German when the first one that is set starts with ``de``,
English otherwise. Tests check that both catalogues have the same keys, placeholders and
plural entries, and that every key the code uses is in them; docs/architecture.md says how
to add a sentence.
"""

from __future__ import annotations

import gettext
import io
import os
import re
import sys
import time
from functools import cache
from importlib import resources
from typing import Any

import click
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from .safetext import printable

LANGUAGES = ("en", "de")
CLICK_DOMAIN = "click"


def language() -> str:
    """``de`` if the locale environment asks for German, else ``en``."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return "de" if value.lower().startswith("de") else "en"
    return "en"


def _po_name(lang: str, domain: str | None) -> str:
    return f"{lang}.po" if domain is None else f"{domain}-{lang}.po"


@cache
def catalogue(lang: str, domain: str | None = None) -> Catalog:
    """The parsed ``.po`` file of one language (our sentences, or click's with ``domain``)."""
    path = resources.files("client").joinpath("locale", _po_name(lang, domain))
    with path.open("rb") as fh:
        return read_po(fh, locale=lang, domain=domain)


@cache
def translations(lang: str, domain: str | None = None) -> Translations:
    """``catalogue(lang)`` as a gettext object; German falls back to English per key."""
    mo = io.BytesIO()
    write_mo(mo, catalogue(lang, domain))
    mo.seek(0)
    found = Translations(mo, domain=domain)
    if domain is None and lang != "en":
        found.add_fallback(translations("en"))
    return found


def has_key(key: str) -> bool:
    """True if ``key`` is a sentence of the English catalogue (the reference)."""
    return key in catalogue("en")


def _fill(key: str, template: str, params: dict[str, Any]) -> str:
    if template == key:
        # A missing key is a bug; show it rather than crash in the middle of an error path.
        return key + (" " + repr(params) if params else "")
    safe = {k: printable(v) if isinstance(v, str) else v for k, v in params.items()}
    try:
        return template.format(**safe)
    except (KeyError, IndexError, ValueError):
        return template


def translate(lang: str, key: str, **params: Any) -> str:
    """The sentence ``key`` in ``lang``, filled with ``params``."""
    return _fill(key, translations(lang).gettext(key), params)


def translate_n(lang: str, key: str, count: int, **params: Any) -> str:
    """The plural sentence ``key`` in the form for ``count`` things; ``{n}`` is the count
    unless ``params`` names it otherwise."""
    params.setdefault("n", count)
    return _fill(key, translations(lang).ngettext(key, key, count), params)


def t(key: str, **params: Any) -> str:
    """The sentence ``key`` in the person's language, filled with ``params``."""
    return translate(language(), key, **params)


def tn(key: str, count: int, **params: Any) -> str:
    """The sentence ``key`` about ``count`` things in the person's language."""
    return translate_n(language(), key, count, **params)


def _click_gettext(message: str) -> str:
    lang = language()
    if lang == "en":
        return message
    return translations(lang, CLICK_DOMAIN).gettext(message)


def _click_ngettext(singular: str, plural: str, count: int) -> str:
    lang = language()
    if lang == "en":
        return singular if count == 1 else plural
    return translations(lang, CLICK_DOMAIN).ngettext(singular, plural, count)


def use_for_click() -> None:
    """Make click's own texts speak the person's language.

    Click imports ``gettext`` and ``ngettext`` into each of its modules, which look in the
    process-wide default gettext domain for compiled ``.mo`` files in a locale tree.
    Rather than claim that domain for the whole process, this rebinds those two names in
    the loaded click modules to functions that ask ``language()`` at each call (so a test
    that changes ``LANG`` sees the change). Idempotent.
    """
    for name, module in list(sys.modules.items()):
        if name != "click" and not name.startswith("click."):
            continue
        if getattr(module, "_", None) in (gettext.gettext, _click_gettext):
            module._ = _click_gettext  # type: ignore[attr-defined]
        if getattr(module, "ngettext", None) in (gettext.ngettext, _click_ngettext):
            module.ngettext = _click_ngettext  # type: ignore[attr-defined]


def localise_usage(command: click.Command) -> None:
    """The usage lines of ``command`` and its subcommands in the person's language:
    "[OPTIONEN]", "BEFEHL [ARGUMENTE]..." and the placeholders of options and arguments
    (``DATEI``, ``NACHRICHTEN_ID``) that have a ``metavar.<name>`` sentence. Click writes
    these in English and outside gettext; call it once the command tree is built."""
    command.options_metavar = t("usage.options")
    if isinstance(command, click.Group):
        command.subcommand_metavar = t("usage.command")
        for sub in command.commands.values():
            localise_usage(sub)
    for param in command.params:
        if isinstance(param, click.Option) and (param.is_flag or param.count):
            continue
        shown = param.metavar or (param.name if isinstance(param, click.Argument)
                                  else param.type.name)
        key = "metavar." + re.sub(r"[^a-z]+", "_", str(shown).lower()).strip("_")
        if has_key(key):
            param.metavar = t(key)


def local_time(ts: int | None) -> str:
    """A Unix time as local date, time and time zone, ``YYYY-MM-DD HH:MM CET`` (the same in
    both languages): with colleagues in other zones and summer time, the zone says which."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(ts))


def duration(seconds: int) -> str:
    """A rough duration in the person's language: days, hours or minutes."""
    if seconds >= 86400 and seconds % 86400 == 0:
        return tn("unit.days", seconds // 86400)
    if seconds >= 3600:
        return tn("unit.hours", seconds // 3600)
    return tn("unit.minutes", max(1, seconds // 60))


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

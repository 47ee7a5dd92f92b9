"""Both catalogues are complete, plural forms included, every key the code uses and every
code the client can raise has a sentence, and click's own texts speak German too."""

from __future__ import annotations

import ast
import os
import re
import string
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from babel.messages.catalog import Catalog
from babel.messages.catalog import Message as Entry
from babel.messages.extract import extract_from_dir
from click.testing import CliRunner

from client.app.words import Words
from client.cli import main as kok_main
from client.errors import KokError, RelayRefused, VerificationError
from client.i18n import (
    CLICK_DOMAIN,
    LANGUAGES,
    catalogue,
    duration,
    file_size,
    language,
    t,
    tn,
    translate,
)
from client.models import Message, SyncReport
from client.render import sync_lines
from protocol.errors import LogRewritten, all_error_classes

REPO = Path(__file__).resolve().parents[2]
CLIENT_DIR = REPO / "client"


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def entries(cat: Catalog) -> dict[str, Entry]:
    return {m.id[0] if isinstance(m.id, tuple) else m.id: m for m in cat if m.id}


def forms(message: Entry) -> tuple[str, ...]:
    return tuple(message.string) if message.pluralizable else (message.string,)


def test_there_is_one_catalogue_format() -> None:
    """A JSON catalogue from before the move to gettext would be silently ignored."""
    assert sorted(p.name for p in (CLIENT_DIR / "locale").iterdir()) == sorted(
        ["click-de.po"] + [f"{lang}.po" for lang in LANGUAGES])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_catalogue_says_its_plural_rule(lang: str) -> None:
    cat = catalogue(lang)
    assert cat.num_plurals == 2 and cat.plural_expr == "(n != 1)"
    assert "Plural-Forms" in {name for name, _ in cat.mime_headers}


def test_every_english_key_has_a_german_translation_with_the_same_placeholders() -> None:
    en, de = entries(catalogue("en")), entries(catalogue("de"))
    assert set(en) == set(de), sorted(set(en) ^ set(de))
    for key, message in en.items():
        assert de[key].pluralizable == message.pluralizable, key
        for lang, entry in (("en", message), ("de", de[key])):
            texts = forms(entry)
            assert len(texts) == catalogue(lang).num_plurals or not entry.pluralizable, key
            assert all(text.strip() for text in texts), (lang, key)
            assert not entry.fuzzy, (lang, key)
            # the form for one may say "every day" instead of "every 1 days"
            assert all(placeholders(text) == placeholders(texts[-1]) for text in texts[1:])
            assert placeholders(texts[0]) <= placeholders(texts[-1]), (lang, key)
        assert placeholders(forms(de[key])[-1]) == placeholders(forms(message)[-1]), key


def test_every_protocol_error_code_has_a_sentence_in_both_languages() -> None:
    de = entries(catalogue("de"))
    missing = [c.code for c in all_error_classes() if f"error.{c.code}" not in de]
    assert missing == []


def used_keys() -> Iterator[tuple[str, str, bool]]:
    """(where, key, plural) for every literal key the client's code and templates ask for."""
    for path in sorted(CLIENT_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not (isinstance(node, ast.Call) and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else ""
            plural = name == "tn" or (isinstance(func, ast.Attribute) and func.attr == "n"
                                      and isinstance(func.value, ast.Name)
                                      and func.value.id == "words")
            if plural or name in ("t", "words"):
                yield f"{path.name}:{node.lineno}", node.args[0].value, plural
    for path in sorted((CLIENT_DIR / "app" / "templates").glob("*.html")):
        text = path.read_text("utf-8")
        for m in re.finditer(r"\b_(\.n)?\(\s*[\"']([a-z_][a-z0-9_.]*)[\"']\s*[,)]", text):
            yield path.name, m.group(2), bool(m.group(1))


def test_every_key_used_in_the_code_and_templates_is_in_the_catalogue() -> None:
    en = entries(catalogue("en"))
    found = list(used_keys())
    assert len(found) > 400  # the scan sees the call sites
    assert [(w, k) for w, k, _ in found if k not in en] == []
    # tn() needs a plural entry and t() a plain one: the other would show the bare key
    assert [(w, k) for w, k, plural in found if k in en and en[k].pluralizable != plural] == []


def test_every_code_raised_in_the_client_source_has_a_sentence() -> None:
    source = "\n".join(p.read_text("utf-8") for p in CLIENT_DIR.glob("*.py"))
    codes = set(re.findall(r'(?:Error|Refused)\("([a-z_]+)"', source))
    en = entries(catalogue("en"))
    missing = sorted(c for c in codes if f"error.{c}" not in en and f"relay_error.{c}" not in en)
    assert missing == []


def test_counts_take_the_plural_form_of_the_language(monkeypatch: pytest.MonkeyPatch) -> None:
    def summary(messages: int, log: int, keys: int) -> str:
        one = Message(id="ab" * 16, from_org="nord", from_staff="nord/anna", to=("sued",),
                      subject="s", body="b", sent=0, expires=0, thread="t", reply_to=None,
                      received=0, read=False)
        report = SyncReport(messages=(one,) * messages, log_entries=log, epoch_keys=keys)
        return sync_lines(report)[0]

    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert summary(1, 1, 1) == "1 new message, 1 new key-log entry, 1 new key."
    assert summary(2, 0, 3) == "2 new messages, 0 new key-log entries, 3 new keys."
    assert tn("inbox.count", 1, unread=1) == "1 message, 1 unread."
    assert tn("orgs.staff_count", 1).strip() == "Staff: 1 person"
    assert duration(86400) == "1 day" and duration(7 * 86400) == "7 days"
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    assert summary(1, 1, 1) == ("1 neue Nachricht, 1 neuer Eintrag im Schlüsselverzeichnis, "
                                "1 neuer Schlüssel.")
    assert summary(2, 5, 0).startswith("2 neue Nachrichten, 5 neue Einträge")
    assert tn("inbox.count", 1, unread=0) == "1 Nachricht, 0 ungelesen."
    assert tn("whois.staff_count", 3) == "Mitarbeitende: 3 Personen"
    assert duration(3600) == "1 Stunde" and duration(2 * 3600) == "2 Stunden"


# Words a German counselling worker would not use, or that read as translated: the key
# "generation" not "epoch", "1 von 2 gelesen", encrypted not "sealed to", always "Sie".
NOT_GERMAN_STAFF_WORDS = re.compile(
    r"Epoche|verschlossen|gelesen von|Upload|Token|Chiffretext|vorwärtsgerichtet|\bAdmins?\b"
    r"|[Ss]ynchronisier|\b[Dd](u|ich|ir|ein|eine|einen|einer)\b")


def test_german_uses_the_words_of_counselling_staff() -> None:
    found = [(key, text) for key, m in entries(catalogue("de")).items() for text in forms(m)
             if NOT_GERMAN_STAFF_WORDS.search(text)]
    assert found == []


def test_the_app_counts_in_the_same_catalogue() -> None:
    assert Words("de").n("app.admin.schedule_done", 1) == (
        "Der Schlüssel wird jetzt jeden Tag erneuert.")
    assert Words("en").n("app.settings.idle_done", 1) == (
        "The app now locks after 1 minute without activity.")
    assert Words("de").n("app.inbox.synced", 3) == "3 neue Nachrichten abgerufen."


def test_click_msgids_are_the_installed_clicks() -> None:
    """The German click catalogue translates every text of the installed click (when it is
    the version it was made from) and at least the ones people meet, by their exact msgids."""
    ours = entries(catalogue("de", CLICK_DOMAIN))
    theirs = {msgid[0] if isinstance(msgid, tuple) else msgid
              for _, _, msgid, *_ in extract_from_dir(
                  Path(click.__file__).parent, keywords={"_": None, "ngettext": (1, 2)})}
    everyday = {"Usage:", "Options", "Commands", "Show this message and exit.",
                "Missing option", "Missing argument", "No such option {name!r}.",
                "No such command {name!r}.", "Error: {message}", "Invalid value: {message}",
                "Invalid value for {param_hint}: {message}", "Try '{command} {option}' for help.",
                "Repeat for confirmation", "Aborted!"}
    assert everyday <= theirs and everyday <= set(ours)
    po = (CLIENT_DIR / "locale" / "click-de.po").read_text("utf-8")
    made_from = re.search(r'"X-Click-Version: ([^\\"]+)', po)
    assert made_from is not None
    if made_from.group(1) == version("click"):
        assert sorted(theirs - set(ours)) == []
    for key, message in ours.items():
        assert all(text.strip() for text in forms(message)), key


def test_kok_help_and_click_errors_speak_german(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "LANG": "de_DE.UTF-8", "PYTHONPATH": str(REPO)}
    env.pop("LC_ALL", None)
    env.pop("LC_MESSAGES", None)
    shown = subprocess.run([sys.executable, "-m", "client", "--help"], env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert shown.startswith("Aufruf: kok [OPTIONEN] BEFEHL [ARGUMENTE]...\n")
    assert "\nOptionen:\n" in shown and "\nBefehle:\n" in shown
    assert "Diese Hilfe anzeigen und beenden." in shown and "Usage" not in shown
    runner = CliRunner()
    for var in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    missing = runner.invoke(kok_main, ["send", "--subject", "s"])
    assert missing.exit_code == 2
    assert "Fehler: Es fehlt die Option '--to'." in missing.output
    unknown = runner.invoke(kok_main, ["--bogus"])
    assert "Die Option '--bogus' gibt es nicht." in unknown.output
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    missing = runner.invoke(kok_main, ["send", "--subject", "s"])
    assert "Error: Missing option '--to'." in missing.output
    assert "Usage:" in runner.invoke(kok_main, ["send", "--help"]).output
    env["LANG"] = "de_DE.UTF-8"
    enrol = subprocess.run([sys.executable, "-m", "client", "org", "enrol", "--help"], env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert enrol.startswith("Aufruf: kok org enrol [OPTIONEN] ANTRAGSDATEI\n")
    assert "--fingerprint FINGERABDRUCK" in enrol
    # kok relay in the German command list: its description and its commands' in German
    assert "Ein kok-Relay betreiben" in shown and "Run and look after" not in shown
    relay = subprocess.run([sys.executable, "-m", "client", "relay", "--help"], env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout
    from relay.cli import relay_group

    assert set(relay_group.commands) <= {line.split()[0] for line in relay.splitlines()
                                         if line.startswith("  ") and line.split()}
    for name in relay_group.commands:
        row = next(line for line in relay.splitlines() if line.startswith(f"  {name} "))
        german = translate("de", "help.relay_" + name)
        assert german.startswith(row.split(None, 1)[1].removesuffix("...")), (name, row)
    assert "Das Relay betreiben" in relay and "Serve the relay" not in relay


@pytest.mark.parametrize(("env", "expected"), [
    ({"LANG": "de_DE.UTF-8"}, "de"),
    ({"LANG": "en_GB.UTF-8"}, "en"),
    ({}, "en"),
    ({"LANG": "de_DE.UTF-8", "LC_ALL": "C"}, "en"),
    ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "de_AT"}, "de"),
    ({"LC_ALL": "de_CH.UTF-8", "LANG": "en_US"}, "de"),
])
def test_language_follows_posix_precedence(monkeypatch: pytest.MonkeyPatch,
                                           env: dict[str, str], expected: str) -> None:
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert language() == expected


def test_errors_speak_german_when_the_locale_is_german(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    assert KokError("wrong_passphrase").message.startswith("Die Passphrase ist falsch")
    assert "nicht erreichbar" in KokError("relay_unreachable", url="http://x").message
    err = VerificationError.from_protocol(LogRewritten())
    assert err.code == "log_rewritten" and "Netzwerkstelle" in err.message
    assert "Administration" in RelayRefused("not_admin", 403, "Only an admin").message
    assert tn("inbox.count", 2, unread=1) == "2 Nachrichten, 1 ungelesen."


def test_protocol_errors_keep_their_code_and_specific_english_wording() -> None:
    err = VerificationError.from_protocol(LogRewritten("the relay's key log has 3 entries"))
    assert err.code == "log_rewritten"
    assert err.message == "the relay's key log has 3 entries"
    assert isinstance(err.__cause__, LogRewritten)


def test_unknown_relay_code_keeps_the_relays_detail() -> None:
    err = RelayRefused("brand_new_code", 418, "I am a teapot")
    assert err.code == "brand_new_code"
    assert "I am a teapot" in err.message and "brand_new_code" in err.message


def test_sizes_are_written_as_the_language_writes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    assert file_size(57_600_000) == "57,6 MB" and file_size(200_000_000) == "200,0 MB"
    assert file_size(999) == "999 B"
    assert t("save.done", name="a.pdf", size=file_size(57_600_000), path="/x") == (
        "a.pdf (57,6 MB) gespeichert unter /x")  # not "57600000 Bytes"
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert file_size(57_600_000) == "57.6 MB"

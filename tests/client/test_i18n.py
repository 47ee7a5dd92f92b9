"""Both catalogues are complete, and every code the client can raise has a sentence."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from client.errors import KokError, RelayRefused, VerificationError
from client.i18n import catalogue, file_size, language, t
from protocol.errors import LogRewritten, all_error_classes

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_english_key_has_a_german_translation_with_the_same_placeholders() -> None:
    en, de = catalogue("en"), catalogue("de")
    assert set(en) == set(de), sorted(set(en) ^ set(de))
    for key, text in en.items():
        assert de[key].strip(), key
        assert placeholders(de[key]) == placeholders(text), key


def test_every_protocol_error_code_has_a_sentence_in_both_languages() -> None:
    missing = [c.code for c in all_error_classes() if f"error.{c.code}" not in catalogue("de")]
    assert missing == []


def test_every_code_and_key_used_in_the_client_source_is_in_the_catalogue() -> None:
    source = "\n".join(p.read_text("utf-8") for p in CLIENT_DIR.glob("*.py"))
    keys = set(re.findall(r'\bt\("([a-z_.]+)"', source))
    codes = set(re.findall(r'(?:Error|Refused)\("([a-z_]+)"', source))
    en = catalogue("en")
    assert sorted(k for k in keys if k not in en) == []
    missing = sorted(c for c in codes if f"error.{c}" not in en and f"relay_error.{c}" not in en)
    assert missing == []


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
    assert t("inbox.count", n=2, unread=1) == "2 Nachrichten, 1 ungelesen."


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

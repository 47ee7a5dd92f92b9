"""Is a new passphrase hard enough to guess? zxcvbn's estimate, our reason in words.

zxcvbn (Dropbox's estimator) scores 0 to 4 by how many guesses an attacker with word lists,
keyboard patterns, dates and common substitutions would need; a length or "one digit, one
capital" rule would let ``Passwort1!`` through and refuse four ordinary words. A keystore
file that leaves the computer (a backup, a stolen laptop) is attacked offline, so we ask for
``MIN_SCORE`` 3 ("safely unguessable": about 10^10 guesses and more), on top of Argon2.

zxcvbn's own feedback is English only; the reason shown is ours, in the person's language,
chosen from the weakest part zxcvbn found (a common word, a keyboard row, a repetition,
a sequence, a date, the profile's own name, or simply too short).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import ProfileError
from .i18n import t

MIN_SCORE = 3
MAX_CHECKED = 100
"""zxcvbn's run time grows with the length; anything longer is judged by its first part."""

_PATTERN_REASON = {
    "dictionary": "passphrase_weak.common_word",
    "spatial": "passphrase_weak.keyboard",
    "repeat": "passphrase_weak.repeat",
    "sequence": "passphrase_weak.sequence",
    "date": "passphrase_weak.date",
    "regex": "passphrase_weak.date",  # zxcvbn's only regex is recent years
}


def weakness(passphrase: str, user_inputs: Iterable[str] = ()) -> str | None:
    """Why ``passphrase`` is too weak, in the person's language; ``None`` if it is strong."""
    key = weakness_key(passphrase, user_inputs)
    return None if key is None else t(key)


def weakness_key(passphrase: str, user_inputs: Iterable[str] = ()) -> str | None:
    """The catalogue key of why ``passphrase`` is too weak (the staff app words it in the
    browser's language); ``None`` if it is strong."""
    if not passphrase:  # zxcvbn itself fails on the empty string (IndexError)
        return "passphrase_weak.short"
    from zxcvbn import zxcvbn  # its word lists take a while to load: only when needed

    inputs = [s for s in user_inputs if s]
    result: dict[str, Any] = zxcvbn(passphrase[:MAX_CHECKED], user_inputs=inputs)
    if int(result["score"]) >= MIN_SCORE:
        return None
    return _reason(result.get("sequence", []))


def _reason(sequence: list[dict[str, Any]]) -> str:
    """The catalogue key of the reason: the longest guessable part, or "too short" if nothing
    but length is at fault."""
    parts = [m for m in sequence if m.get("pattern") in _PATTERN_REASON]
    if not parts:
        return "passphrase_weak.short"
    worst = max(parts, key=lambda m: len(str(m.get("token", ""))))
    if worst.get("dictionary_name") == "user_inputs":
        return "passphrase_weak.own_name"
    return _PATTERN_REASON[str(worst["pattern"])]


def require_strong(passphrase: str, user_inputs: Iterable[str] = ()) -> None:
    """``ProfileError("weak_passphrase")`` with the reason, if ``passphrase`` is too weak."""
    reason = weakness(passphrase, user_inputs)
    if reason is not None:
        raise ProfileError("weak_passphrase", reason=reason)

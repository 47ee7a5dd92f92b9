"""Text from other people, made safe to print on a terminal.

Subjects, bodies, display names and file names come from other organisations (or from a
request file). Printed raw, an escape sequence in them could rewrite the screen, hide a
warning or fake a line such as a fingerprint; a bidirectional override could make a name
read differently from what it is. Every control and format character except tab is shown
as a visible ``\\uXXXX`` escape instead.
"""

from __future__ import annotations

import unicodedata

_KEEP = frozenset("\t")


def printable(text: str) -> str:
    """``text`` with control and format characters (ESC, CR, bidi overrides...) escaped."""
    if text.isprintable():  # the common case, fast
        return text
    out = []
    for ch in text:
        if ch in _KEEP or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"):
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)

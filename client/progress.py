"""A one-line progress display for file transfers: name, bytes, rate, time left.

Shown on stderr only when stderr is a terminal and neither ``--json`` nor ``--quiet`` was
given; the line is redrawn with ``\\r`` at most once a second (a screen reader or braille
display would otherwise be flooded), is never longer than 79 characters, and the final line
of a file ends with a newline and no trailing spaces (the old line is blanked first). No
colour, no bar characters: words and numbers from ``client.i18n``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from .i18n import file_size, t

REDRAW = 1.0
MAX_LINE = 79


def human_bytes(n: float) -> str:
    """Bytes in decimal units, e.g. ``12.3 MB`` (``12,3 MB`` in German)."""
    return file_size(n)


def clock_time(seconds: float) -> str:
    """A duration as ``m:ss`` or ``h:mm:ss``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLine:
    """Call with (name, done, total) as bytes move; draws one line per file on ``stream``."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self._name: str | None = None
        self._started = 0.0
        self._first = 0
        self._drawn = 0.0
        self._width = 0

    def __call__(self, name: str, done: int, total: int) -> None:
        now = self.clock()
        if name != self._name:
            self._name, self._started, self._first, self._drawn = name, now, done, 0.0
        finished = done >= total
        if not finished and now - self._drawn < REDRAW:
            return
        self._drawn = now
        elapsed = max(now - self._started, 1e-6)
        rate = (done - self._first) / elapsed
        if finished:
            text = t("progress.done", name=name, total=human_bytes(total),
                     time=clock_time(elapsed), rate=human_bytes(rate))
        elif done <= self._first or now <= self._started:
            # nothing has moved yet: no rate to show, and "0:00 left" would be untrue
            text = t("progress.start", name=name, done=human_bytes(done),
                     total=human_bytes(total), percent=int(100 * done / max(total, 1)))
        else:
            left = (total - done) / rate
            text = t("progress.line", name=name, done=human_bytes(done),
                     total=human_bytes(total), percent=int(100 * done / max(total, 1)),
                     rate=human_bytes(rate), left=clock_time(left))
        text = _fit(text, name)
        blank = "\r" + " " * self._width if self._width > len(text) else ""
        self._width = len(text)
        self.stream.write(blank + "\r" + text + ("\n" if finished else ""))
        self.stream.flush()
        if finished:
            self._name, self._width = None, 0


def _fit(text: str, name: str) -> str:
    """``text`` within ``MAX_LINE`` characters, shortening the file name in the middle."""
    over = len(text) - MAX_LINE
    if over <= 0 or len(name) <= 8:
        return text[:MAX_LINE]
    keep = max(8, len(name) - over - 1)
    short = name[: keep // 2] + "…" + name[len(name) - (keep - keep // 2):]
    return text.replace(name, short, 1)[:MAX_LINE]


def progress_for(as_json: bool, stream: TextIO | None = None, *, quiet: bool = False
                 ) -> Callable[[str, int, int], None] | None:
    """A progress display on a terminal, or None under ``--json``, ``--quiet`` or when piped."""
    stream = stream or sys.stderr
    if as_json or quiet or not stream.isatty():
        return None
    return ProgressLine(stream)

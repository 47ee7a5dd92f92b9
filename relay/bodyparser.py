"""Parsing large request bodies in a child process, off the event loop and off its GIL.

A body of several megabytes (a send of eight 1 MiB envelopes) takes a few hundred
milliseconds of pure-Python-held CPU to decode: UTF-8, JSON, base64. On a worker thread
that time still holds the GIL, and the event loop waits for it after every poll, so every
other client's request waits too. A child process parses it instead; the event loop only
hands the bytes over and takes the result back (memory copies).

The child is started on the first large body (``forkserver``: not a fork of a process
that runs threads) and stopped with the application. The value and any refusal come back
as they were raised: a refusal's class, message and fields are carried over, not just its
message. A parser that cannot be sent to another process (a lambda) runs on a thread.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from aiohttp import web

from .errors import RelayError

T = TypeVar("T")
CHILD_NICENESS = 10


class BodyParser:
    """One child process parsing large bodies, one at a time (``LARGE_AT_ONCE``)."""

    def __init__(self, workers: int = 1) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    async def parse(self, parse: Callable[[bytes, Callable[[Any], T]], T], raw: bytes,
                    parser: Callable[[Any], T]) -> T:
        """``parse(raw, parser)`` in the child (on a thread if ``parser`` cannot go there)."""
        try:
            pickle.dumps(parser)
        except (pickle.PicklingError, AttributeError, TypeError):
            return await asyncio.to_thread(parse, raw, parser)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("forkserver"),
                initializer=_lower_priority)
        loop = asyncio.get_running_loop()
        try:
            ok, value = await loop.run_in_executor(self._pool, _run, parse, raw, parser)
        except BrokenProcessPool:  # the child died (killed, out of memory): start anew
            self._pool = None
            raise
        if ok:
            return value  # type: ignore[no-any-return]
        cls, args, fields = value
        error = cls.__new__(cls)
        error.args = args
        error.__dict__.update(fields)
        raise error

    def close(self) -> None:
        """Stop the child (a parse still running is abandoned)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _lower_priority() -> None:
    """In the child: when the cores are busy, the event loop's process goes first (a large
    body's parse waits a little longer instead of every small request)."""
    os.nice(CHILD_NICENESS)


def _run(parse: Callable[[bytes, Callable[[Any], T]], T], raw: bytes,
         parser: Callable[[Any], T]) -> tuple[bool, Any]:
    """In the child: the value, or the refusal as (class, args, fields)."""
    try:
        return True, parse(raw, parser)
    except RelayError as error:
        return False, (type(error), error.args, dict(error.__dict__))


BODY_PARSER = web.AppKey("body_parser", BodyParser)

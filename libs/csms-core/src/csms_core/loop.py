"""The event loop of ``csms gateway`` and ``csms sessions``: uvloop (libuv, in C) unless
``CSMS_EVENT_LOOP=asyncio``.

A gateway's work per station CALL is mostly event-loop and transport work (reading the
frame, resuming the tasks that wait on it, writing the answer and the Kafka record), and
so is a REST command's in the sessions service (the HTTP request, two Redis round trips, the
reply's wake-up): uvloop does that work in C. ``asyncio`` is the standard library's loop,
for a platform without uvloop or to compare.
"""

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar, get_args

T = TypeVar("T")

EventLoop = Literal["uvloop", "asyncio"]
LOOPS: tuple[EventLoop, ...] = get_args(EventLoop)
DEFAULT_LOOP: EventLoop = "uvloop"


def chosen(environ: dict[str, str] | None = None) -> EventLoop:
    """The loop ``CSMS_EVENT_LOOP`` names (default uvloop); ``ValueError`` for another name."""
    name = (os.environ if environ is None else environ).get("CSMS_EVENT_LOOP", DEFAULT_LOOP)
    name = name.strip().lower()
    if name not in LOOPS:
        raise ValueError(f"CSMS_EVENT_LOOP must be one of {', '.join(LOOPS)}, not {name!r}")
    return name


def run(main: Coroutine[Any, Any, T], loop: EventLoop | None = None) -> T:
    """Run ``main`` to its end on the chosen event loop (``asyncio.run`` otherwise)."""
    if (loop or chosen()) == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)

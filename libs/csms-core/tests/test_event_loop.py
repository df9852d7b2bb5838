"""The event loop choice of the gateway and the sessions service (``CSMS_EVENT_LOOP``)."""

import asyncio

import pytest
import uvloop

from csms_core import loop


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_uvloop_by_default_and_asyncio_on_request() -> None:
    assert loop.chosen({}) == "uvloop"
    assert loop.chosen({"CSMS_EVENT_LOOP": " AsyncIO "}) == "asyncio"
    assert issubclass(loop.run(_loop_type(), "uvloop"), uvloop.Loop)
    assert not issubclass(loop.run(_loop_type(), "asyncio"), uvloop.Loop)


def test_an_unknown_event_loop_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="uvloop, asyncio, not 'trio'"):
        loop.chosen({"CSMS_EVENT_LOOP": "trio"})

"""The plumbing of a consumer in a child process (csms_cli.apart), with stand-in children: the
API process is ready once its child says so, stops (a failure) once the child ends, and
stops the child on its own stop; the child stops once the API process's end is gone."""

import asyncio
import signal
import socket
import sys

from csms_cli.apart import READY, ConsumerChild, ControlChannel

# A stand-in child: says it is ready (unless told "silent"), then lives until told to end.
CHILD = """
import os, socket, sys, time
fd = int(sys.argv[sys.argv.index("--control-fd") + 1])
control = socket.socket(fileno=fd)
mode = sys.argv[1]
if mode != "silent":
    control.sendall(b"R")
if mode == "exit":
    sys.exit(3)
time.sleep(60)
"""


def command(mode: str) -> list[str]:
    return [sys.executable, "-c", CHILD, mode]


async def test_the_api_process_is_ready_once_its_child_says_so() -> None:
    ready, stopping = asyncio.Event(), asyncio.Event()
    child = await ConsumerChild.start(command("ready"))
    watching = asyncio.create_task(child.watch(ready, stopping))
    await asyncio.wait_for(ready.wait(), 10)
    stopping.set()
    await asyncio.wait_for(watching, 5)
    assert await child.stop() == -signal.SIGTERM  # the stand-in has no handler: killed by it
    assert not child.failed


async def test_a_silent_child_never_makes_it_ready() -> None:
    ready, stopping = asyncio.Event(), asyncio.Event()
    child = await ConsumerChild.start(command("silent"))
    watching = asyncio.create_task(child.watch(ready, stopping))
    await asyncio.sleep(0.5)
    assert not ready.is_set()
    stopping.set()
    await asyncio.wait_for(watching, 5)
    await child.stop()


async def test_a_child_that_ends_stops_the_api_process_as_a_failure() -> None:
    ready, stopping = asyncio.Event(), asyncio.Event()
    child = await ConsumerChild.start(command("exit"))
    await asyncio.wait_for(child.watch(ready, stopping), 10)
    assert stopping.is_set() and child.failed
    assert await child.stop() == 3


async def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout() -> None:
    stubborn = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + CHILD
    child = await ConsumerChild.start([sys.executable, "-c", stubborn, "ready"], stop_timeout_s=0.5)
    ready, stopping = asyncio.Event(), asyncio.Event()
    watching = asyncio.create_task(child.watch(ready, stopping))
    await asyncio.wait_for(ready.wait(), 10)  # its handler is in place
    stopping.set()
    await watching
    assert await child.stop() == -signal.SIGKILL
    assert child.failed


async def test_the_child_reports_ready_and_stops_when_the_api_process_is_gone() -> None:
    ours, theirs = socket.socketpair()
    control = await ControlChannel.open(theirs.detach())
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    ready, stopping = asyncio.Event(), asyncio.Event()
    reporting = asyncio.create_task(control.report_ready(ready, stopping))
    watching = asyncio.create_task(control.watch_parent(stopping))
    ready.set()
    assert await asyncio.wait_for(reader.read(1), 5) == READY
    await reporting
    writer.close()  # the API process is gone
    await asyncio.wait_for(watching, 5)
    assert stopping.is_set()
    control.close()


async def test_the_child_stopping_on_its_own_neither_reports_nor_waits() -> None:
    ours, theirs = socket.socketpair()
    control = await ControlChannel.open(theirs.detach())
    ready, stopping = asyncio.Event(), asyncio.Event()
    stopping.set()  # SIGTERM before it was ready
    await asyncio.wait_for(control.report_ready(ready, stopping), 5)
    await asyncio.wait_for(control.watch_parent(stopping), 5)
    control.close()
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # nothing reported, the end closed
    writer.close()

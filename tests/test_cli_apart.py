"""The plumbing of a consumer in a child process (csms_cli.apart), with stand-in children: the
API process is ready once its child says so, starts another once the child ends (and stops,
a failure, once children keep ending), and stops the child on its own stop; the child stops
once the API process's end is gone."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from csms_cli.apart import (
    READY,
    ConsumerChild,
    ConsumerSupervisor,
    ControlChannel,
    RestartPolicy,
)

# A stand-in child: says it is ready (unless told "silent"), then lives until told to end;
# "exit" ends at once (status 3), "exit-once PATH" only if PATH does not exist (it makes it).
CHILD = """
import os, socket, sys, time
fd = int(sys.argv[sys.argv.index("--control-fd") + 1])
control = socket.socket(fileno=fd)
mode = sys.argv[1]
if mode == "exit-once":
    marker = sys.argv[2]
    if not os.path.exists(marker):
        open(marker, "w").close()
        sys.exit(3)
if mode != "silent":
    control.sendall(b"R")
if mode == "exit":
    sys.exit(3)
time.sleep(60)
"""

QUICK = RestartPolicy(max_restarts=2, window_s=60, backoff_s=0.01)


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


# A stand-in child on the product's own end of the control socket: ready at once, answering
# the API process's asks with these metrics until told to end (or until its parent is gone).
ANSWERING = """
import asyncio, sys
from csms_cli.apart import ControlChannel
fd = int(sys.argv[sys.argv.index("--control-fd") + 1])
async def main():
    control = await ControlChannel.open(fd)
    ready, stopping = asyncio.Event(), asyncio.Event()
    ready.set()
    await control.report_ready(ready, stopping)
    await control.watch_parent(stopping, lambda: b"# TYPE stand_in gauge\\nstand_in 1.0\\n")
asyncio.run(main())
"""


async def test_the_api_process_asks_its_child_for_its_metrics() -> None:
    ready, stopping = asyncio.Event(), asyncio.Event()
    child = await ConsumerChild.start([sys.executable, "-c", ANSWERING])
    watching = asyncio.create_task(child.watch(ready, stopping))
    await asyncio.wait_for(ready.wait(), 10)
    asks = await asyncio.gather(*(child.metrics() for _ in range(3)))  # one after another
    assert asks == [b"# TYPE stand_in gauge\nstand_in 1.0\n"] * 3
    stopping.set()
    await asyncio.wait_for(watching, 5)
    await child.stop()
    assert await child.metrics() is None  # gone: no answer, no wait


async def test_a_child_that_does_not_answer_leaves_its_metrics_out() -> None:
    ready, stopping = asyncio.Event(), asyncio.Event()
    child = await ConsumerChild.start(command("ready"))  # it reads nothing it is sent
    watching = asyncio.create_task(child.watch(ready, stopping))
    await asyncio.wait_for(ready.wait(), 10)
    assert await child.metrics(timeout_s=0.2) is None
    stopping.set()
    await asyncio.wait_for(watching, 5)
    await child.stop()


async def test_a_silent_child_never_makes_it_ready() -> None:
    ready, stopping = asyncio.Event(), asyncio.Event()
    child = await ConsumerChild.start(command("silent"))
    watching = asyncio.create_task(child.watch(ready, stopping))
    await asyncio.sleep(0.5)
    assert not ready.is_set()
    stopping.set()
    await asyncio.wait_for(watching, 5)
    await child.stop()


async def test_a_child_that_ends_is_seen_ending() -> None:
    ready, stopping = asyncio.Event(), asyncio.Event()
    child = await ConsumerChild.start(command("exit"))
    assert await asyncio.wait_for(child.watch(ready, stopping), 10)
    assert not stopping.is_set()
    assert await child.stop() == 3
    assert child.failed


def samples(service: str) -> float | None:
    return REGISTRY.get_sample_value("csms_consumer_process_restarts_total", {"service": service})


async def test_a_child_that_ends_is_started_again(tmp_path: Path) -> None:
    supervisor = ConsumerSupervisor(
        [sys.executable, "-c", CHILD, "exit-once", str(tmp_path / "ended")],
        service="test-restarted",
        policy=QUICK,
    )
    ready, stopping = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(supervisor.run(ready, stopping))
    await asyncio.wait_for(ready.wait(), 10)  # the second child: the first ended unready
    assert supervisor.restarts == 1 and samples("test-restarted") == 1
    assert supervisor.pid is not None
    stopping.set()
    await asyncio.wait_for(running, 10)
    assert not supervisor.failed and supervisor.pid is None


async def test_children_that_keep_ending_stop_the_api_process_as_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = ConsumerSupervisor(command("exit"), service="test-crashing", policy=QUICK)
    ready, stopping = asyncio.Event(), asyncio.Event()
    await asyncio.wait_for(supervisor.run(ready, stopping), 30)
    assert stopping.is_set() and supervisor.failed
    assert supervisor.restarts == 2 and samples("test-crashing") == 2  # the third end: none
    assert not ready.is_set()  # cleared as the last one ended
    assert "3 times in 60 s: stopping (exit status 1)" in caplog.text


async def test_no_restarts_allowed_stops_at_the_first_end() -> None:
    never = RestartPolicy(max_restarts=0, window_s=60, backoff_s=0.01)
    supervisor = ConsumerSupervisor(command("exit"), service="test-no-restarts", policy=never)
    ready, stopping = asyncio.Event(), asyncio.Event()
    await asyncio.wait_for(supervisor.run(ready, stopping), 10)
    assert stopping.is_set() and supervisor.failed and supervisor.restarts == 0


async def test_a_stop_during_the_back_off_starts_no_other_child() -> None:
    slow = RestartPolicy(max_restarts=2, window_s=60, backoff_s=600)
    supervisor = ConsumerSupervisor(command("exit"), service="test-backing-off", policy=slow)
    ready, stopping = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(supervisor.run(ready, stopping))
    await asyncio.wait_for(ready.wait(), 10)  # the child runs (it says so, then ends)
    async with asyncio.timeout(10):
        while supervisor.pid is not None:  # until it ended: the back-off
            await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(running, 5)
    assert supervisor.restarts == 0 and not supervisor.failed


async def test_a_stop_stops_the_running_child() -> None:
    supervisor = ConsumerSupervisor(command("ready"), service="test-stopped", policy=QUICK)
    ready, stopping = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(supervisor.run(ready, stopping))
    await asyncio.wait_for(ready.wait(), 10)
    pid = supervisor.pid
    assert pid is not None
    stopping.set()
    await asyncio.wait_for(running, 10)
    with pytest.raises(ProcessLookupError):  # stopped and reaped
        os.kill(pid, 0)
    assert supervisor.restarts == 0


@pytest.mark.parametrize(
    ("recent", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (20, 30.0)]
)
def test_the_back_off_doubles_with_each_recent_end_up_to_its_cap(recent: int, delay: float) -> None:
    assert RestartPolicy().delay(recent) == delay


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

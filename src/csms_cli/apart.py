"""A service's consumer in a child process of its own, supervised by the process that serves
its REST API (``csms sessions`` with ``CSMS_SESSIONS_PROCESSES=2``).

On one event loop, every REST request waits behind whatever the consumer runs between two
awaits (decoding a poll, applying a batch): under 500 station events a second a bare
``GET /healthz`` took p50 18 / p99 94-145 ms. Apart, the two share nothing but the database,
Kafka and Redis, and the kernel schedules each on its own.

The two talk over a socket pair the child inherits (``--control-fd``):

- the child writes ``READY`` once it consumes (migrated, partitions assigned, its calls
  announced): the API process is ready (``/healthz`` 200) from then on;
- the API process asks ``METRICS`` for a scrape of its ``/metrics``, the child answers
  ``METRICS``, the length (4 bytes, big-endian) and its Prometheus text
  (``csms_api.metrics``: the two in one answer);
- either side's end of the socket closes when its process ends, however it ends: the
  child that sees the API process gone stops (on Linux the kernel also kills it then,
  as it would the whole container);
- the API process that sees its child end on its own starts another (``ConsumerSupervisor``:
  not ready meanwhile, after a back-off that doubles with each recent restart, logged and
  counted in ``csms_consumer_process_restarts_total``); a child that keeps ending (more
  restarts within a window than ``RestartPolicy`` allows) stops the API process too, exit
  status 1, for the orchestrator to restart the replica.
"""

import asyncio
import ctypes
import logging
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter, generate_latest

from csms_cli.runtime import all_set_unless

logger = logging.getLogger(__name__)

consumer_restarts = Counter(
    "csms_consumer_process_restarts",
    "Consumer processes the API process started again after one ended on its own",
    ["service"],
)

READY = b"R"
METRICS = b"M"
METRICS_TIMEOUT_S = 2.0  # a scrape without the child's metrics after this long
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> None:
    """In the child, before exec: killed by the kernel when the API process dies (SIGKILL)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _die_with_parent_on_linux() -> Callable[[], None] | None:
    return _die_with_parent if sys.platform == "linux" else None


class ConsumerChild:
    """The consumer's process, seen from the API process that started it (``start``)."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stop_timeout_s: float,
    ) -> None:
        self._process = process
        self._reader = reader
        self._writer = writer
        self._stop_timeout_s = stop_timeout_s
        self._ending = False  # it closed its end: it is exiting on its own
        self._asking = asyncio.Lock()  # one ask for its metrics at a time
        self._answer: asyncio.Future[bytes] | None = None
        self.failed = False

    @classmethod
    async def start(cls, command: list[str], *, stop_timeout_s: float = 20.0) -> "ConsumerChild":
        """Run ``command`` with ``--control-fd N``, its end of the control socket."""
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                "--control-fd",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                preexec_fn=_die_with_parent_on_linux(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        logger.info("consumer process %d started", process.pid)
        return cls(process, reader, writer, stop_timeout_s)

    @property
    def pid(self) -> int:
        return self._process.pid

    async def watch(self, ready: asyncio.Event, stopping: asyncio.Event) -> bool:
        """Set ``ready`` when the child consumes; until ``stopping``, or until the child ends
        (its end of the control socket closed): whether it did."""
        reading = asyncio.create_task(self._read(ready), name="consumer process: control")
        stop = asyncio.create_task(stopping.wait(), name="consumer process: await stop")
        await asyncio.wait({reading, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if reading.done():
            self._ending = True
            return True
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        return False

    async def _read(self, ready: asyncio.Event) -> None:
        try:
            while tag := await self._reader.read(1):
                if tag == READY:
                    ready.set()
                elif tag == METRICS:
                    size = int.from_bytes(await self._reader.readexactly(4), "big")
                    text = await self._reader.readexactly(size)
                    if self._answer is not None and not self._answer.done():
                        self._answer.set_result(text)
        except asyncio.IncompleteReadError:
            pass  # it ended mid-answer

    async def metrics(self, timeout_s: float = METRICS_TIMEOUT_S) -> bytes | None:
        """The child's Prometheus text; None if it does not answer within ``timeout_s``."""
        async with self._asking:
            if self._ending or self._writer.is_closing():
                return None
            self._answer = asyncio.get_running_loop().create_future()
            try:
                self._writer.write(METRICS)
                return await asyncio.wait_for(self._answer, timeout_s)
            except (TimeoutError, ConnectionError):
                return None
            finally:
                self._answer = None

    async def stop(self) -> int:
        """SIGTERM (a graceful stop; none to a child already exiting on its own), SIGKILL
        after ``stop_timeout_s``; the exit status."""
        self._writer.close()
        process = self._process
        if process.returncode is None:
            if not self._ending:
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self._stop_timeout_s)
            except TimeoutError:
                logger.error("the consumer process did not stop in time: killed")  # noqa: TRY400
                process.kill()
                await process.wait()
        status = process.returncode
        assert status is not None  # noqa: S101 - waited for
        if status not in (0, -signal.SIGTERM):
            self.failed = True
        return status


@dataclass(frozen=True)
class RestartPolicy:
    """How the API process restarts a consumer process that ended on its own: after
    ``backoff_s``, doubled for each other restart in the last ``window_s`` (at most
    ``max_backoff_s``); more than ``max_restarts`` within ``window_s`` is a failure."""

    max_restarts: int = 5
    window_s: float = 60.0
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def delay(self, recent: int) -> float:
        """The back-off before a restart, ``recent`` ends (this one included) in the window."""
        return min(self.backoff_s * (1 << min(max(recent - 1, 0), 30)), self.max_backoff_s)


class ConsumerSupervisor:
    """Keeps one consumer process running (``run``) for the API process: started, watched,
    started again when it ends on its own, stopped on the API process's stop."""

    def __init__(
        self,
        command: list[str],
        *,
        service: str,
        policy: RestartPolicy | None = None,
        stop_timeout_s: float = 20.0,
    ) -> None:
        self._command = command
        self._service = service
        self._policy = policy or RestartPolicy()
        self._stop_timeout_s = stop_timeout_s
        self._ends: deque[float] = deque()  # when children ended on their own, in the window
        self._child: ConsumerChild | None = None
        self.restarts = 0
        self.failed = False

    @property
    def pid(self) -> int | None:
        """The running child's process id (None between two children)."""
        return self._child.pid if self._child is not None else None

    async def metrics(self) -> bytes | None:
        """The running child's Prometheus text (None between two children, or no answer)."""
        child = self._child
        return None if child is None else await child.metrics()

    async def run(self, ready: asyncio.Event, stopping: asyncio.Event) -> None:
        """Until ``stopping``: ``ready`` while a child consumes; a child that ends on its own
        is started again (``RestartPolicy``), or ``stopping`` is set, a failure. The last
        child is stopped (SIGTERM, then SIGKILL) before it returns, however it returns."""
        try:
            while not stopping.is_set():
                self._child = await ConsumerChild.start(
                    self._command, stop_timeout_s=self._stop_timeout_s
                )
                if not await self._child.watch(ready, stopping):
                    return  # stopping: the child is stopped below
                ready.clear()  # not consuming until the next child says so
                pid, status = self._child.pid, await self._child.stop()
                self._child = None
                if stopping.is_set():
                    return  # it ended with the API process's stop (a signal to the group)
                if not await self._restart_after(pid, status, stopping):
                    return
        finally:
            if self._child is not None:
                await self._child.stop()
                self.failed = self.failed or self._child.failed
                self._child = None

    async def _restart_after(self, pid: int, status: int, stopping: asyncio.Event) -> bool:
        """Whether to start another child (after the back-off) once ``pid`` ended."""
        policy, now = self._policy, time.monotonic()
        self._ends.append(now)
        while self._ends and self._ends[0] < now - policy.window_s:
            self._ends.popleft()
        if len(self._ends) > policy.max_restarts:
            logger.error(
                "the consumer process %d ended (status %d), %d times in %g s: stopping "
                "(exit status 1)",
                pid,
                status,
                len(self._ends),
                policy.window_s,
            )
            self.failed = True
            stopping.set()
            return False
        delay = policy.delay(len(self._ends))
        logger.error(
            "the consumer process %d ended (status %d): restarting it in %g s",
            pid,
            status,
            delay,
        )
        if await _stopped_within(stopping, delay):
            return False
        self.restarts += 1
        consumer_restarts.labels(self._service).inc()
        return True


async def _stopped_within(stopping: asyncio.Event, timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(stopping.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


class ControlChannel:
    """The child's end (``open``): it says when it is ready, and sees when the API process is
    gone."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, fd: int) -> "ControlChannel":
        reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd))
        return cls(reader, writer)

    def close(self) -> None:
        self._writer.close()

    async def report_ready(self, ready: asyncio.Event, stopping: asyncio.Event) -> None:
        """Tell the API process once ``ready`` is set (unless stopping first)."""
        if await all_set_unless([ready], stopping):
            self._writer.write(READY)
            await self._writer.drain()

    async def watch_parent(
        self, stopping: asyncio.Event, metrics: Callable[[], bytes] = generate_latest
    ) -> None:
        """Until ``stopping``, answering the API process's asks for ``metrics``; set
        ``stopping`` when the API process is gone (its end closed)."""
        reading = asyncio.create_task(self._answer(metrics), name="control: serve the parent")
        stop = asyncio.create_task(stopping.wait(), name="control: await stop")
        await asyncio.wait({reading, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if reading.done() and not stopping.is_set():
            logger.error("the API process is gone: stopping")
            stopping.set()
        reading.cancel()
        await asyncio.gather(reading, stop, return_exceptions=True)

    async def _answer(self, metrics: Callable[[], bytes]) -> None:
        """Answer each ask until the API process's end closes."""
        while ask := await self._reader.read(1):
            if ask == METRICS:
                text = metrics()
                self._writer.write(METRICS + len(text).to_bytes(4, "big") + text)
                await self._writer.drain()

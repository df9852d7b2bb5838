"""Real ``csms`` processes for end-to-end tests: gateways and sessions replicas.

They run exactly as in production (``csms gateway`` / ``csms sessions``),
configured by environment variables, against the real Kafka, Redis and
PostgreSQL that ``scripts/infra.sh`` started.
"""

import ctypes
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy.engine import make_url

from csms_core.db import create_engine
from tests import asyncapi_check
from tests.kits.api import bearer_headers

logger = logging.getLogger(__name__)

CSMS = Path(sys.executable).with_name("csms")
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    redis_url: str
    database_url: str


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it when the process that started it dies.

    A test or benchmark killed on a timeout (pytest-timeout, ``subprocess.run(timeout=)``)
    otherwise leaves its ``csms`` processes running, holding ports and CPU for the rest of
    the suite: a CI run at load 15 found four of them still alive half an hour later."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def die_with_parent_if_main() -> Callable[[], None] | None:
    """The signal follows the thread that forked, not the process: a component started from
    a pool's thread would die as that thread ends, so only the main thread's ask for it."""
    if sys.platform == "linux" and threading.current_thread() is threading.main_thread():
        return _die_with_parent
    return None


@dataclass
class Component:
    """One ``csms`` sub-command running as its own process."""

    command: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    # A gateway with TLS answers its /healthz over https: trust its server certificate.
    tls: ssl.SSLContext | None = None
    # Another checkout's ``csms`` (its own virtual environment), run in that checkout: a
    # benchmark's before/after in one run (bench.throughput --baseline-tree).
    program: Path = CSMS
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def health_url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/healthz"

    def start(self, timeout_s: float = 60) -> None:
        self.spawn()
        self.wait_healthy(timeout_s)

    def spawn(self) -> None:
        """The process started, not waited for (``start_together``)."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(self.program), self.command],
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.program.parents[2] if self.program != CSMS else REPO,
            preexec_fn=die_with_parent_if_main(),
        )

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command} exited: see {self.log_path}\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(
                    self.health_url, timeout=1, context=self.tls
                ) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.command} not healthy in {timeout_s}s\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: a crash, no goodbye."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: graceful shutdown."""
        self._end(signal.SIGTERM)

    def _end(self, signum: int) -> None:
        self._signal(signum)
        self._reap()

    def _signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def _reap(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def start_together(components: Iterable[Component], timeout_s: float = 60) -> None:
    """Every component started at once, then each waited for: a cluster's processes spend
    their start-up importing and joining groups, which overlaps (one after the other, four
    of them took 14 s). Started from this thread, so each dies with it (PR_SET_PDEATHSIG)."""
    started = list(components)
    for component in started:
        component.spawn()
    deadline = time.monotonic() + timeout_s
    for component in started:
        component.wait_healthy(max(deadline - time.monotonic(), 1.0))


def stop_together(components: Iterable[Component]) -> None:
    """SIGTERM to every component at once, then each waited for (each drains on its own)."""
    stopping = list(components)
    for component in stopping:
        component._signal(signal.SIGTERM)
    for component in stopping:
        component._reap()


@dataclass
class PrivateBrokers:
    """A Kafka broker and/or a Redis server of a test's own, for tests that kill or
    restart them: ``scripts/infra.sh`` with a state directory and ports of their own,
    so the shared brokers that other test runs use stay up. PostgreSQL stays shared."""

    state_dir: Path
    env: dict[str, str]
    infra: Infra

    @classmethod
    def start(cls, shared: Infra, state_dir: Path, *, kafka: bool, redis: bool) -> "PrivateBrokers":
        env = {
            "CSMS_INFRA_STATE": str(state_dir),
            "CSMS_INFRA_USE_EXISTING_POSTGRES": shared.database_url,
        }
        kafka_bootstrap, redis_url = shared.kafka_bootstrap, shared.redis_url
        if kafka:
            kafka_port = free_port()
            env["CSMS_INFRA_KAFKA_PORT"] = str(kafka_port)
            env["CSMS_INFRA_KAFKA_CONTROLLER_PORT"] = str(free_port())
            kafka_bootstrap = f"127.0.0.1:{kafka_port}"
        else:
            env["CSMS_INFRA_USE_EXISTING_KAFKA"] = shared.kafka_bootstrap
        if redis:
            redis_port = free_port()
            env["CSMS_INFRA_REDIS_PORT"] = str(redis_port)
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        else:
            env["CSMS_INFRA_USE_EXISTING_REDIS"] = shared.redis_url
        brokers = cls(state_dir, env, Infra(kafka_bootstrap, redis_url, shared.database_url))
        brokers.run("start")
        return brokers

    def run(self, command: str) -> None:
        """``scripts/infra.sh COMMAND`` on these brokers (``kafka-stop``, ``kafka-start``...)."""
        subprocess.run(
            [str(REPO / "scripts/infra.sh"), command],
            env={**os.environ, **self.env},
            check=True,
            timeout=180,
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.run("clean")

    @classmethod
    @contextmanager
    def running(
        cls, shared: Infra, state_dir: Path, *, kafka: bool, redis: bool
    ) -> Iterator["PrivateBrokers"]:
        """``start``, and ``stop`` (its state deleted) at the end."""
        brokers = cls.start(shared, state_dir, kafka=kafka, redis=redis)
        try:
            yield brokers
        finally:
            brokers.stop()


async def admin_headers(infra: Infra) -> dict[str, str]:
    """The Authorization header of a new admin API key in the cluster's database."""
    engine = create_engine(infra.database_url)
    try:
        return await bearer_headers(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def own_database(database_url: str, prefix: str = "csms_own") -> AsyncIterator[str]:
    """The URL of a PostgreSQL database of the caller's own (``prefix_<random>``) on the
    server of ``database_url``, dropped at the end (the run's database is shared by every
    test of the session, and by the benchmarks' processes)."""
    url = make_url(database_url)
    server = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


def topic_prefix(group: str) -> str:
    """A test cluster's own topic namespace: no backlog of other runs to wade through."""
    return f"{group}."


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic named ``prefix``... (a test cluster's namespace); best effort."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    except KafkaError as exc:  # a broker a test stopped, say: the topics are only litter
        logger.warning("topics %s* not deleted: %r", prefix, exc)
    finally:
        await admin.close()


async def retire_topics(bootstrap: str, prefix: str) -> None:
    """The end of a test cluster's topics: every record on them is checked against
    docs/asyncapi.yaml (``tests.asyncapi_check``), then they are deleted; the
    records that disagree with the document fail the test that owned the cluster.
    A broker that is gone (a test stopped it) is logged, not a finding."""
    try:
        report = await asyncapi_check.check_topics(bootstrap, prefix)
    except KafkaError as exc:
        logger.warning("topics %s* not checked against the AsyncAPI document: %r", prefix, exc)
        report = None
    await delete_topics(bootstrap, prefix)
    if report is not None:
        report.raise_findings()


def platform_env(infra: Infra, group: str) -> dict[str, str]:
    """The environment of every process of one test cluster (``group`` names the cluster)."""
    return {
        "CSMS_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "CSMS_KAFKA_TOPIC_PREFIX": topic_prefix(group),
        "CSMS_KAFKA_PARTITIONS": "4",
        "CSMS_REDIS_URL": infra.redis_url,
        "CSMS_DATABASE_URL": infra.database_url,
        "CSMS_CONSUMER_GROUP": group,
        "CSMS_LOG_LEVEL": "INFO",
        "CSMS_ENVIRONMENT": "development",
        # As deployed (docker-compose.yml, deploy/k8s: 0.01), CALLs are not all traced, so
        # the gateway answers what it decides itself from the record's acknowledgement
        # (InboundCalls.answer_soon); 0 rather than 0.01 keeps each CALL's path the same
        # from run to run. The traced path: tests/test_tracing.py and the gateway's tests.
        "CSMS_TRACE_SAMPLE_RATIO": "0",
    }


def gateway(infra: Infra, group: str, gateway_id: str, log_dir: Path, **extra: str) -> Component:
    port = free_port()
    env = {
        **platform_env(infra, group),
        "CSMS_GATEWAY_ID": gateway_id,
        "CSMS_OCPP_PORT": str(port),
        # Test stations connect unregistered; the sessions replicas decide their boot.
        "CSMS_UNKNOWN_STATION_POLICY": "accept",
        **extra,
    }
    return Component("gateway", port, env, log_dir / f"{gateway_id}.log")


def sessions(infra: Infra, group: str, name: str, log_dir: Path, **extra: str) -> Component:
    port = free_port()
    env = {**platform_env(infra, group), "CSMS_API_PORT": str(port), **extra}
    return Component("sessions", port, env, log_dir / f"{name}.log")

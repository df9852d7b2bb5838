"""What every benchmark shares: infra, real ``csms`` processes, client processes, figures.

Isolation from the test suites that run on the same brokers at the same time:
- PostgreSQL: a database of its own per run (``csms_bench_<hex>``), dropped at its end;
- Redis: a database number of its own (``/9``, or ``CSMS_BENCH_REDIS_DB``), flushed at the
  start of a run;
- Kafka: full-size runs write hundreds of thousands of records. Topic names are a
  fixed contract, and every new consumer group of a test suite starts at the
  earliest offset, so those records would be replayed by every later test run.
  Full-size runs therefore use a broker of their own (127.0.0.1:29092, started
  with ``scripts/infra.sh kafka-start`` and its own state directory); ``--smoke``
  runs write a handful of records and use the shared test broker.
- Consumer groups are unique per run and start at the end of the topics.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.fleet import raise_file_limit
from tests import cluster
from tests.cluster import Component, Infra

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPO / "bench" / "RESULTS.md"
SHARED_KAFKA = "127.0.0.1:19092"
BENCH_KAFKA_PORT, BENCH_KAFKA_CONTROLLER_PORT = 29092, 29093
BENCH_KAFKA_STATE = "/tmp/csms-bench-infra"  # noqa: S108 - a fixed place for a local broker
BENCH_DATABASE = "csms_bench"  # each run: csms_bench_<8 hex>, dropped at its end
# Runs of several people at once on one Redis: give each its own with CSMS_BENCH_REDIS_DB
# (a flush at a run's start empties that database only).
BENCH_REDIS_DB = int(os.environ.get("CSMS_BENCH_REDIS_DB", "9"))


# -- process limits and measurements ---------------------------------------------------------


def rss_kib(pid: int) -> int:
    """Resident set size of a process (VmRSS in /proc/<pid>/status), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its children (alive: ``csms sessions`` in two
    processes) have used so far (/proc/<pid>/stat), seconds."""
    return sum(sum(cpu_split(one)) for one in process_tree(pid))


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants alive now."""
    tree, index = [pid], 0
    while index < len(tree):
        try:
            children = Path(f"/proc/{tree[index]}/task/{tree[index]}/children").read_text()
        except FileNotFoundError:
            children = ""
        tree.extend(int(child) for child in children.split())
        index += 1
    return tree


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU time a process has used so far (/proc/<pid>/stat), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def thread_cpu(pid: int) -> dict[str, float]:
    """User + system CPU time of a process's live threads so far, seconds, summed by thread
    name (``/proc/<pid>/task/*/stat``: e.g. the event loop's ``csms`` against librdkafka's
    ``rdk:broker1``; a profile of the GIL sees only the first)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
        head, _, rest = text.rpartition(")")
        name, fields = head.partition("(")[2], rest.split()
        used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return used


def machine_cpu() -> tuple[float, float, float]:
    """The machine's CPU time so far (/proc/stat, all CPUs): (busy, idle incl. I/O wait,
    stolen by the hypervisor), seconds. Two readings' difference says how saturated the
    cores were meanwhile: the load average also counts tasks waiting for I/O."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    busy = user + nice + system + irq + softirq
    return busy / ticks, (idle + iowait) / ticks, steal / ticks


class LoopLag:
    """How late this process's event loop wakes a task that sleeps ``interval_s`` (ms): what
    every await of the benchmark's own clients and stations waits on top of the server."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []

    async def run(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stopping.is_set():
            started = loop.time()
            await asyncio.sleep(self.interval_s)
            self.samples.append(1000 * (loop.time() - started - self.interval_s))


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN without samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


# -- RESULTS.md ------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem_kib / 2**20:.1f} GiB, Linux "
        f"{platform.release()}, Python {platform.python_version()}, open files (hard) {files}"
    )


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit} dirty" if git("status", "--porcelain") else commit


@dataclass
class Report:
    """A benchmark's figures: printed as they come, appended to RESULTS.md at the end."""

    title: str
    results: Path | None
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, line: str) -> None:
        """One figure line (load average appended), printed at once."""
        line = f"{line} (load avg {loadavg()})"
        print(f"FIGURE {line}", flush=True)
        self.lines.append(line)

    def note(self, line: str) -> None:
        print(f"NOTE {line}", flush=True)
        self.notes.append(line)

    def write(self) -> None:
        if self.results is None:
            print("(smoke mode: not written to bench/RESULTS.md)", flush=True)
            return
        command = "uv run python -m " + shlex.join([_module_name(), *sys.argv[1:]])
        section = [
            f"\n## {self.title}: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n",
            f"- machine: {machine()}",
            f"- commit: {git_commit()}",
            f"- command: `{command}`",
            f"- load average (1/5/15 min) at the end: {loadavg()} "
            "(other engineers' test suites share this machine: figures are noisy)",
            "",
            *[f"- {line}" for line in self.lines],
        ]
        if self.notes:
            section += ["", *[f"> {note}" for note in self.notes]]
        self.results.parent.mkdir(parents=True, exist_ok=True)
        with self.results.open("a") as out:
            out.write("\n".join(section) + "\n")
        print(f"appended to {self.results}", flush=True)


def _module_name() -> str:
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).stem


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true", help="tiny and fast (for the tests)")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="where to append the figures (default bench/RESULTS.md; with --smoke: nowhere)",
    )
    parser.add_argument(
        "--kafka",
        default=None,
        help="Kafka bootstrap (default: the benchmarks' own broker; with --smoke the shared one)",
    )
    parser.add_argument("--logs", type=Path, default=None, help="log directory of the processes")
    parser.add_argument(
        "--attach",
        type=Path,
        default=None,
        help="use the gateway/sessions described in this JSON file (Csms.attachment)",
    )


def report_for(title: str, args: argparse.Namespace) -> Report:
    results = args.results
    if results is None and not args.smoke:
        results = DEFAULT_RESULTS
    return Report(title, results)


# -- infrastructure --------------------------------------------------------------------------


def shared_infra() -> Infra:
    """The brokers scripts/infra.sh runs (CSMS_TEST_* variables, else its defaults)."""
    return Infra(
        os.environ.get("CSMS_TEST_KAFKA_BOOTSTRAP", SHARED_KAFKA),
        os.environ.get("CSMS_TEST_REDIS_URL", "redis://127.0.0.1:16379/0"),
        os.environ.get(
            "CSMS_TEST_DATABASE_URL", "postgresql+asyncpg://csms:csms@127.0.0.1:5432/csms_test"
        ),
    )


def start_bench_kafka() -> str:
    """Start (if needed) the benchmarks' own single-node broker; its bootstrap address."""
    env = {
        **os.environ,
        "CSMS_INFRA_STATE": BENCH_KAFKA_STATE,
        "CSMS_INFRA_KAFKA_PORT": str(BENCH_KAFKA_PORT),
        "CSMS_INFRA_KAFKA_CONTROLLER_PORT": str(BENCH_KAFKA_CONTROLLER_PORT),
    }
    subprocess.run([str(REPO / "scripts" / "infra.sh"), "kafka-start"], env=env, check=True)
    return f"127.0.0.1:{BENCH_KAFKA_PORT}"


def bench_kafka_pid(bootstrap: str) -> int | None:
    """The pid of the benchmarks' own broker when ``bootstrap`` is it (else None)."""
    if bootstrap != f"127.0.0.1:{BENCH_KAFKA_PORT}":
        return None
    pid_file = Path(BENCH_KAFKA_STATE) / "kafka.pid"
    text = pid_file.read_text().strip() if pid_file.exists() else ""
    return int(text) if text.isdigit() and Path(f"/proc/{text}").exists() else None


async def _admin(shared_url: str, statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    url = make_url(shared_url).set(database="postgres")
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


def new_database(shared_url: str) -> str:
    """A database of this run's own (two runs side by side must not empty each other's)."""
    from sqlalchemy.engine import make_url

    name = f"{BENCH_DATABASE}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(shared_url, f'CREATE DATABASE "{name}"'))
    return make_url(shared_url).set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    with contextlib.suppress(Exception):
        asyncio.run(_admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def bench_infra(args: argparse.Namespace) -> Infra:
    """Infra for one run: a new database, the benchmarks' Redis db emptied; Kafka as chosen."""
    from redis import Redis

    shared = shared_infra()
    kafka = args.kafka or (shared.kafka_bootstrap if args.smoke else start_bench_kafka())
    redis_url = shared.redis_url.rsplit("/", 1)[0] + f"/{BENCH_REDIS_DB}"
    Redis.from_url(redis_url).flushdb()
    return Infra(kafka, redis_url, new_database(shared.database_url))


async def start_group_at_end(bootstrap: str, group: str, topics: Sequence[str]) -> None:
    """Commit ``group``'s offsets at the end of ``topics``: it skips the history."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


# -- csms processes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Running:
    """A running ``csms`` process: its HTTP/WebSocket port and its pid."""

    port: int
    pid: int


@dataclass
class Csms:
    """Real ``csms gateway`` / ``csms sessions`` processes of one benchmark run.

    Attached (``--attach``) to processes someone else started, it hands those out
    instead of starting its own: the smoke tests start one pair for all benchmarks.
    """

    infra: Infra
    log_dir: Path
    group: str = field(default_factory=lambda: f"csms-bench-{uuid.uuid4().hex[:8]}")
    components: list[Component] = field(default_factory=list)
    attached: dict[str, Running] = field(default_factory=dict)
    _admin: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> dict[str, str]:
        """The Authorization header of an admin API key in the run's database."""
        if not self._admin:

            async def create() -> None:
                self._admin.update(await cluster.admin_headers(self.infra))

            _run_apart(create())
        return self._admin

    def gateway(self, **extra: str) -> Running:
        if "gateway" in self.attached:
            return self.attached["gateway"]
        return self._start(self._gateway_component(extra))

    def gateway_from(self, tree: Path, **extra: str) -> Running:
        """A gateway run from another checkout (its ``.venv``: ``uv sync`` there first)."""
        component = self._gateway_component(extra)
        component.program = tree / ".venv" / "bin" / "csms"
        return self._start(component)

    def sessions(self, **extra: str) -> Running:
        if "sessions" in self.attached:
            return self.attached["sessions"]
        return self._start(self._sessions_component(extra))

    def sessions_and_gateway(self, **sessions_env: str) -> tuple[Running, Running]:
        """Both started, one after the other, from this thread: a component dies with the
        thread that started it (``tests.cluster``: PR_SET_PDEATHSIG follows the forking
        thread), so one started from a pool's thread was killed when that thread ended."""
        if "sessions" in self.attached and "gateway" in self.attached:
            return self.attached["sessions"], self.attached["gateway"]
        sessions = self._start(self._sessions_component(sessions_env))
        return sessions, self._start(self._gateway_component({}))

    def _sessions_component(self, extra: dict[str, str]) -> Component:
        from csms_sessions.consumer import TOPICS

        _run_apart(_ensure_topics(self.infra.kafka_bootstrap))
        _run_apart(start_group_at_end(self.infra.kafka_bootstrap, self.group, TOPICS))
        # 1 % of the traces it starts recorded (its REST requests), as the gateway's below.
        env = {
            "CSMS_LOG_LEVEL": "WARNING",
            "CSMS_UNKNOWN_STATION_POLICY": "accept",
            "CSMS_TRACE_SAMPLE_RATIO": "0.01",
            **extra,
        }
        name = f"sessions-{len(self.components)}"
        return cluster.sessions(self.infra, self.group, name, self.log_dir, **env)

    def _gateway_component(self, extra: dict[str, str]) -> Component:
        gateway_id = f"gw-bench-{uuid.uuid4().hex[:6]}"
        # 1 % of station messages traced (the default traces every one, and every service
        # hop then records an SDK span: ~50 µs each); a benchmark may ask otherwise.
        # No abuse bounds: a closed-loop station sends far more than the 20 CALLs/s a
        # connection may by default, and every benchmark station comes from 127.0.0.1 (at
        # most 1,000 connections per address by default). The benchmarks measure capacity,
        # not the limiters.
        env = {
            "CSMS_LOG_LEVEL": "WARNING",
            "CSMS_TRACE_SAMPLE_RATIO": "0.01",
            "CSMS_STATION_RATE_PER_S": "0",
            "CSMS_MAX_CONNECTIONS_PER_ADDRESS": "0",
            **extra,
        }
        return cluster.gateway(self.infra, self.group, gateway_id, self.log_dir, **env)

    def _start(self, component: Component) -> Running:
        return self.start_together([component])[0]

    def start_together(self, components: list[Component]) -> list[Running]:
        """``components`` started at once (``tests.cluster.start_together``), from this thread."""
        self.components.extend(components)  # stopped with the rest even if one fails
        cluster.start_together(components, timeout_s=120)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        running = []
        for component in components:
            assert component.process is not None
            # `csms gateway` keeps the default soft limit: lift it to the hard one from outside.
            resource.prlimit(component.process.pid, resource.RLIMIT_NOFILE, (hard, hard))
            running.append(Running(component.port, component.process.pid))
        return running

    def stop(self) -> None:
        cluster.stop_together(reversed(self.components))
        if self.components:  # a run that started its processes owns its topic namespace
            prefix = cluster.topic_prefix(self.group)
            _run_apart(cluster.delete_topics(self.infra.kafka_bootstrap, prefix))

    def attachment(self) -> dict[str, Any]:
        """What ``--attach`` reads: the infra and the processes started so far."""
        running = {c.command: Running(c.port, c.process.pid) for c in self.components if c.process}
        return {
            "kafka": self.infra.kafka_bootstrap,
            "redis": self.infra.redis_url,
            "database": self.infra.database_url,
            "group": self.group,  # its topic namespace, for a service a run adds
            "running": {name: [r.port, r.pid] for name, r in running.items()},
        }


@contextlib.contextmanager
def bare_reference() -> Iterator[Running]:
    """The bare reference server (``bench.bare``) in a process of its own, on the event loop
    the gateway runs on (``CSMS_EVENT_LOOP``)."""
    from csms_core.loop import chosen

    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare", "--port", "0", "--loop", chosen()],
        stdout=subprocess.PIPE,
        cwd=REPO,
        preexec_fn=cluster.die_with_parent_if_main(),  # a benchmark killed leaves none behind
    )
    try:
        assert process.stdout is not None
        started = orjson.loads(process.stdout.readline() or b"{}")
        if "port" not in started:
            raise RuntimeError(f"bench.bare did not start (exit {process.wait(10)})")
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (hard, hard))
        yield Running(int(started["port"]), process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def attached_csms(path: Path) -> Csms:
    described = json.loads(path.read_text())
    infra = Infra(described["kafka"], described["redis"], described["database"])
    running = {name: Running(*value) for name, value in described["running"].items()}
    if "group" in described:
        return Csms(infra, path.parent, group=described["group"], attached=running)
    return Csms(infra, path.parent, attached=running)


def _run_apart(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to its end on a loop of its own (callable from inside a loop)."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, coroutine).result()


async def _ensure_topics(bootstrap: str) -> None:
    from csms_core.bus.kafka import KafkaBus

    async with KafkaBus(bootstrap):  # creates the contract's topics
        pass


@contextlib.contextmanager
def running_csms(args: argparse.Namespace) -> Iterator[Csms]:
    raise_file_limit()
    if args.attach is not None:
        yield attached_csms(args.attach)
        return
    infra = bench_infra(args)
    log_dir = args.logs or Path(f"/tmp/csms-bench-logs-{uuid.uuid4().hex[:6]}")  # noqa: S108
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"infra: kafka {infra.kafka_bootstrap}, redis {infra.redis_url}; logs {log_dir}")
    csms = Csms(infra, log_dir)
    try:
        yield csms
    finally:
        csms.stop()
        drop_database(infra.database_url)


def metric_value(port: int, name: str) -> float:
    """Sum of a gateway metric's samples from GET /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def metric_samples(
    port: int, name: str, headers: Mapping[str, str] | None = None
) -> dict[str, float]:
    """The samples of a metric from GET /metrics, by their label text (``step="apply"``);
    ``headers`` carry a token where /metrics needs one (a service's app: a viewer's)."""
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers=dict(headers or {})
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        body = response.read().decode()
    samples: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line[len(name) + 1 :].rpartition(" ")
            samples[labels.rstrip("}")] = float(value)
    return samples


def consumer_steps(
    port: int, headers: Mapping[str, str], group: str | None = None
) -> dict[str, tuple[float, float]]:
    """The batched consumers' time per step so far: {step: (seconds, count)}; ``group``:
    that consumer group's only (a service's other batched consumers, e.g. the sessions
    service's local lists' of station.status, poll too: their idle 0.5 s polls would
    count as its wait)."""
    sums = metric_samples(port, "csms_consumer_batch_seconds_sum", headers)
    counts = metric_samples(port, "csms_consumer_batch_seconds_count", headers)
    steps: dict[str, tuple[float, float]] = {}
    for labels, total in sums.items():
        if group is not None and f'group="{group}"' not in labels:
            continue
        step = labels.rsplit('step="', 1)[-1].rstrip('"')
        previous = steps.get(step, (0.0, 0.0))
        steps[step] = (previous[0] + total, previous[1] + counts.get(labels, 0.0))
    return steps


def consumer_sizes(
    port: int, headers: Mapping[str, str], group: str
) -> dict[str, tuple[float, float]]:
    """The batched consumer ``group``'s records so far: {"poll" | "transaction": (records,
    polls or transactions)}."""
    sizes: dict[str, tuple[float, float]] = {}
    for what, name in (
        ("poll", "csms_consumer_poll_records"),
        ("transaction", "csms_consumer_batch_records"),
    ):
        sums = metric_samples(port, f"{name}_sum", headers)
        counts = metric_samples(port, f"{name}_count", headers)
        label = f'group="{group}"'
        sizes[what] = (sums.get(label, 0.0), counts.get(label, 0.0))
    return sizes


def sizes_between(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> str:
    """Records per poll and per transaction between two ``consumer_sizes`` readings."""
    parts = []
    for what, (records, times) in after.items():
        records -= before.get(what, (0.0, 0.0))[0]
        times -= before.get(what, (0.0, 0.0))[1]
        if times:
            parts.append(f"{records / times:.0f} records per {what} (x {times:.0f})")
    return ", ".join(parts)


def steps_between(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> str:
    """Where the batched consumer's time went between two ``consumer_steps`` readings."""
    parts = []
    for step, (seconds, count) in after.items():
        spent = seconds - before.get(step, (0.0, 0.0))[0]
        times = count - before.get(step, (0.0, 0.0))[1]
        if times:
            parts.append(f"{step} {spent:.1f} s ({1000 * spent / times:.1f} ms x {times:.0f})")
    return ", ".join(parts)


# The planner's view of a run's tables: how often each was read whole (a sequential scan)
# and how many rows those scans read, by index, and when it was last analyzed.
_TABLE_SCANS = """
SELECT relname, seq_scan, seq_tup_read, COALESCE(idx_scan, 0), n_live_tup,
       GREATEST(last_analyze, last_autoanalyze) IS NOT NULL
FROM pg_stat_user_tables
"""


@dataclass(frozen=True, slots=True)
class TableScans:
    sequential: int
    rows_read: int
    by_index: int
    rows: int
    analyzed: bool


async def table_scans(database_url: str) -> dict[str, TableScans]:
    """Each table of the run's database: its scans so far (PostgreSQL's statistics; they
    reach the view within a second or so of each transaction's end)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        rows = await connection.fetch(_TABLE_SCANS)
    finally:
        await connection.close()
    return {row[0]: TableScans(*row[1:]) for row in rows}


async def scans_since(database_url: str, before: Mapping[str, TableScans]) -> str:
    """``scans_between`` a reading and now, once the statistics of the last transactions
    have reached the view."""
    await asyncio.sleep(1.5)
    return scans_between(before, await table_scans(database_url))


def scans_between(before: Mapping[str, TableScans], after: Mapping[str, TableScans]) -> str:
    """The tables read whole between two ``table_scans`` readings, with the rows those scans
    read and whether the table had been analyzed (by the second reading); "none" if none."""
    parts = []
    for table, now in sorted(after.items(), key=lambda item: -item[1].rows_read):
        was = before.get(table, TableScans(0, 0, 0, 0, analyzed=False))
        scans = now.sequential - was.sequential
        if scans:
            analyzed = "analyzed" if now.analyzed else "never analyzed"
            parts.append(
                f"{table} {scans} ({now.rows_read - was.rows_read} rows read; "
                f"{now.by_index - was.by_index} index scans; {now.rows} rows, {analyzed})"
            )
    return ", ".join(parts) or "none"


# -- client processes ------------------------------------------------------------------------


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    first: int
    count: int

    async def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(command) + b"\n")
        await self.process.stdin.drain()

    async def receive(self, timeout_s: float = 600.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        if not line:
            raise RuntimeError(f"load generator {self.process.pid} exited")
        event: dict[str, Any] = json.loads(line)
        return event


class Workers:
    """Load-generator processes (``bench.loadgen``), each with a slice of the stations."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers

    async def ask(self, timeout_s: float = 600.0, **command: Any) -> list[dict[str, Any]]:
        """Send ``command`` to every worker; their answers, in order."""
        for worker in self.workers:
            await worker.send(**command)
        return list(await asyncio.gather(*(worker.receive(timeout_s) for worker in self.workers)))

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self.workers]


@contextlib.asynccontextmanager
async def workers(port: int, prefix: str, stations: int, processes: int) -> AsyncIterator[Workers]:
    """``processes`` load generators sharing ``stations`` stations ``{prefix}000000``..."""
    per_process = math.ceil(stations / processes)
    started: list[Worker] = []
    try:
        for first in range(0, stations, per_process):
            count = min(per_process, stations - first)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.loadgen",
                f"--port={port}",
                f"--prefix={prefix}",
                f"--first={first}",
                f"--count={count}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=REPO,
                limit=1 << 26,
            )
            started.append(Worker(process, first, count))
        yield Workers(started)
    finally:
        for worker in started:
            with contextlib.suppress(Exception):
                await worker.send(cmd="exit")
        for worker in started:
            try:
                await asyncio.wait_for(worker.process.wait(), 30)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()


def station_prefix(name: str) -> str:
    return f"BENCH-{name}-{uuid.uuid4().hex[:4]}-"


def now_epoch() -> float:
    return time.time()


# -- profiling -------------------------------------------------------------------------------


async def profile(
    pid: int, seconds: float, raw_path: Path, *, gil: bool = False, native: bool = False
) -> list[str]:
    """Sample ``pid`` with py-spy (from PyPI, in uv's tool cache) for ``seconds``.

    Returns the summary lines: the functions where the samples were (self) and the
    ones on the stack (inclusive), as shares of the non-idle samples. With ``gil`` only
    the samples where the thread held the GIL count (Python running, not a system call:
    on a loaded machine, a process descheduled in ``write`` otherwise fills the profile).
    With ``native`` the C frames are sampled too (what a C extension spends its time on).
    """
    process = await asyncio.create_subprocess_exec(
        "uv", "tool", "run", "py-spy", "record", "--nonblocking", "--rate", "200",
        "--duration", str(int(seconds)), "--pid", str(pid), "--format", "raw",
        "--output", str(raw_path), *(["--gil"] if gil else []),
        *(["--native"] if native else []),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await process.wait()
    if process.returncode != 0:
        return [f"py-spy failed (exit {process.returncode})"]
    return summarize_stacks(read_lines(raw_path))


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def summarize_stacks(lines: list[str], top: int = 12) -> list[str]:
    """Top self and inclusive frames of py-spy's collapsed stacks ("a;b;c COUNT")."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short_frame(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    if total == 0:
        return ["no samples"]

    def ranked(counts: dict[str, int]) -> list[str]:
        # Frames on (nearly) every stack are the event loop and the CLI: say nothing.
        telling = {frame: count for frame, count in counts.items() if count < 0.8 * total}
        best = sorted(telling.items(), key=lambda item: item[1], reverse=True)[:top]
        return [f"{100 * count / total:5.1f}%  {frame}" for frame, count in best]

    return [
        f"{total} samples while the process was busy; self time:",
        *ranked(own),
        "inclusive (on the stack; event loop and CLI frames left out):",
        *ranked(inclusive),
    ]


def _short_frame(frame: str) -> str:
    """``func (path/to/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py)``."""
    name, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{name} ({short})"

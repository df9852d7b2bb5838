"""First contact with ``csms up``: readable logs on a terminal, JSON lines elsewhere, a
banner that says where everything is, and ``--demo`` without a number.

The real ``csms`` command runs as a process, on a pseudo-terminal where a person would
sit, or with its output in a pipe as in a container.
"""

import asyncio
import json
import os
import pty
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest

from csms_cli.banner import StartupInfo, startup_info
from csms_cli.embedded import run_embedded
from csms_cli.main import DEFAULT_DEMO_STATIONS, expand_bare_demo
from tests.cluster import CSMS, free_port
from tests.waiting import eventually

BANNER_END = "  Stop   Ctrl-C\n"
HUMAN_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: ")


def _environment() -> dict[str, str]:
    """This environment without CSMS_* settings: `csms up` as a newcomer starts it."""
    return {name: value for name, value in os.environ.items() if not name.startswith("CSMS_")}


@asynccontextmanager
async def on_a_terminal(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``csms ARGS`` with a pseudo-terminal for stdin, stdout and stderr; yields the process
    and everything it printed up to the end of its banner."""
    controller, terminal = pty.openpty()
    loop = asyncio.get_running_loop()
    printed = bytearray()
    banner_seen = asyncio.Event()

    def read() -> None:
        try:
            printed.extend(os.read(controller, 65536))
        except OSError:  # the process closed the terminal
            loop.remove_reader(controller)
        if BANNER_END.encode() in printed.replace(b"\r\n", b"\n"):
            banner_seen.set()

    process = await asyncio.create_subprocess_exec(
        str(CSMS), *args, stdin=terminal, stdout=terminal, stderr=terminal, env=_environment()
    )
    os.close(terminal)
    loop.add_reader(controller, read)
    try:
        await asyncio.wait_for(banner_seen.wait(), 60)
        yield process, printed.decode(errors="replace").replace("\r\n", "\n")
    finally:
        await _interrupt(process)
        loop.remove_reader(controller)
        os.close(controller)


async def _interrupt(process: asyncio.subprocess.Process) -> None:
    """Ctrl-C, as a person stops it."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


def _before_banner(printed: str) -> tuple[list[str], list[str]]:
    head, _, _ = printed.partition("CSMS is up:")
    banner = "CSMS is up:" + printed.split("CSMS is up:", 1)[1].split(BANNER_END, 1)[0]
    return [line for line in head.splitlines() if line.strip()], banner.splitlines()


async def test_on_a_terminal_logs_are_readable_and_the_banner_ends_the_start_up(
    data_dir: Path,
) -> None:
    """`csms up --demo` (no number): readable lines, the banner, then ten stations."""
    ocpp_port, api_port = free_port(), free_port()
    async with on_a_terminal(
        "up",
        f"--ocpp-port={ocpp_port}",
        f"--api-port={api_port}",
        f"--data-dir={data_dir}",
        "--demo",
    ) as (process, printed):
        logs, banner = _before_banner(printed)
        admin_key_file = data_dir / "admin.key"
        assert logs, printed
        for line in logs:
            assert HUMAN_LINE.match(line), f"not a readable log line: {line!r}"
        assert banner == [
            "CSMS is up: every component in this process (embedded mode, for trying it out)",
            f"  OCPP   ws://127.0.0.1:{ocpp_port}/ocpp/{{station_id}}   (1.6, 2.0.1, 2.1; "
            "unknown stations are accepted)",
            f"  REST   http://127.0.0.1:{api_port}/api/v1",
            f"  Docs   http://127.0.0.1:{api_port}/docs   "
            f"(OpenAPI: http://127.0.0.1:{api_port}/openapi.json)",
            f"  Data   {data_dir} (SQLite csms.db)",
            f'  Auth   REST: -H "Authorization: Bearer $(cat {admin_key_file})" (an '
            "admin key; `csms api-keys` for more); a station connects without a password "
            "until one is set with PUT /api/v1/stations/{id}",
            f"  Demo   {DEFAULT_DEMO_STATIONS} virtual stations (DEMO00001...), time x60",
        ]
        assert (data_dir / "csms.db").is_file()
        admin = {"Authorization": f"Bearer {(data_dir / 'admin.key').read_text().strip()}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}", headers=admin
        ) as client:
            assert (await client.get("/docs")).status_code == 200

            async def demo_fleet_online() -> list[str] | None:
                items = (await client.get("/api/v1/stations", params={"limit": 50})).json()
                online = sorted(s["station_id"] for s in items["items"] if s["online"])
                return online if len(online) == DEFAULT_DEMO_STATIONS else None

            online = await eventually(demo_fleet_online, timeout_s=60)
        assert online == [f"DEMO{n:05d}" for n in range(1, DEFAULT_DEMO_STATIONS + 1)]
    assert process.returncode == 0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory, as the banner prints it (resolved)."""
    return (tmp_path / "data").resolve()


async def in_a_pipe(
    data_dir: Path, api_port: int, **env: str
) -> tuple[asyncio.subprocess.Process, asyncio.StreamReader]:
    """``csms up`` with its stderr in a pipe, as in a container: the process, its stderr."""
    process = await asyncio.create_subprocess_exec(
        str(CSMS),
        "up",
        f"--ocpp-port={free_port()}",
        f"--api-port={api_port}",
        f"--data-dir={data_dir}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**_environment(), **env},
    )
    assert process.stderr is not None
    return process, process.stderr


async def test_in_a_pipe_every_line_is_json_and_the_banner_a_record(data_dir: Path) -> None:
    """A container's stderr is no terminal: JSON lines, the banner as one record."""
    api_port = free_port()
    process, stderr = await in_a_pipe(data_dir, api_port)
    records: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(60):
            while not records or records[-1]["message"] != "csms is up":
                line = await stderr.readline()
                assert line, f"exited before it was up: {records}"
                records.append(json.loads(line))
    finally:
        await _interrupt(process)
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)
    up = records[-1]
    assert up["rest_url"] == f"http://127.0.0.1:{api_port}/api/v1"
    assert up["data"] == f"{data_dir} (SQLite csms.db)"
    assert up["demo_stations"] == 0
    assert f"$(cat {data_dir / 'admin.key'})" in str(up["auth"])
    remaining = (await stderr.read()).decode().splitlines()
    assert remaining and all(json.loads(line)["level"] for line in remaining)  # shutdown too
    assert process.returncode == 0


async def test_csms_log_json_false_gives_readable_lines_in_a_pipe(data_dir: Path) -> None:
    process, stderr = await in_a_pipe(data_dir, free_port(), CSMS_LOG_JSON="false")
    printed = ""
    try:
        async with asyncio.timeout(60):
            while BANNER_END not in printed:
                line = (await stderr.readline()).decode()
                assert line, f"exited before it was up: {printed}"
                printed += line
    finally:
        await _interrupt(process)
    logs, banner = _before_banner(printed)
    assert logs and all(HUMAN_LINE.match(line) for line in logs), logs
    assert banner[0].startswith("CSMS is up:")


async def test_the_banner_points_at_what_really_answers(tmp_path: Path) -> None:
    """In-process: each address the banner gives answers (REST, docs, OpenAPI)."""
    infos: list[StartupInfo] = []
    ready, stopping = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(
        run_embedded(
            host="127.0.0.1",
            ocpp_port=free_port(),
            api_port=free_port(),
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}",
            unknown_station_policy="reject",
            ready=ready,
            stopping=stopping,
            on_up=infos.append,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), 30)
        (info,) = infos
        assert "unknown stations are rejected" in info.text()
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{info.rest_url}/stations")).status_code == 401
            admin = {"Authorization": f"Bearer {(tmp_path / 'admin.key').read_text().strip()}"}
            stations = await client.get(f"{info.rest_url}/stations", headers=admin)
            assert stations.status_code == 200
            assert f"$(cat {tmp_path / 'admin.key'})" in info.auth
            assert "swagger" in (await client.get(info.docs_url)).text.lower()
            assert (await client.get(info.openapi_url)).json()["info"]["title"] == "CSMS API"
    finally:
        stopping.set()
        await asyncio.wait_for(running, 30)


def _info(**changes: object) -> StartupInfo:
    arguments: dict[str, object] = {
        "host": "127.0.0.1",
        "ocpp_port": 9000,
        "api_port": 8000,
        "tls": False,
        "database_url": "sqlite+aiosqlite:////srv/csms/csms.db",
        "unknown_stations": "accept",
        "demo_stations": 0,
    }
    arguments.update(changes)
    return startup_info(**arguments)  # type: ignore[arg-type]


def test_the_banner_for_every_interface_uses_localhost_and_says_so() -> None:
    info = _info(host="0.0.0.0")
    assert info.rest_url == "http://localhost:8000/api/v1"
    assert "  Note   listening on every interface" in info.text()
    assert "Note" not in _info().text()


def test_the_banner_says_wss_with_tls_and_brackets_an_ipv6_host() -> None:
    assert _info(tls=True).ocpp_url == "wss://127.0.0.1:9000/ocpp/{station_id}"
    assert _info(host="::1").docs_url == "http://[::1]:8000/docs"


def test_the_banner_names_the_demo_fleet_only_when_there_is_one() -> None:
    assert "Demo" not in _info().text()
    assert "  Demo   3 virtual stations" in _info(demo_stations=3).text()
    assert asdict(_info())["data"] == "/srv/csms (SQLite csms.db)"


@pytest.mark.parametrize(
    ("args", "expanded"),
    [
        (["up", "--demo"], ["up", f"--demo={DEFAULT_DEMO_STATIONS}"]),
        (["up", "--demo", "5"], ["up", "--demo", "5"]),
        (["up", "--demo", "ten"], ["up", "--demo", "ten"]),  # refused by the parser
        (["up", "--demo=7"], ["up", "--demo=7"]),
        (
            ["up", "--demo", "--host", "0.0.0.0"],
            ["up", f"--demo={DEFAULT_DEMO_STATIONS}", "--host", "0.0.0.0"],
        ),
        (["up"], ["up"]),
        (["simulate", "--demo"], ["simulate", "--demo"]),  # only `up` has --demo
        ([], []),
    ],
)
def test_demo_without_a_number_means_the_default_fleet(
    args: list[str], expanded: list[str]
) -> None:
    assert expand_bare_demo(args) == expanded


async def test_demo_with_a_bad_number_is_a_clear_error() -> None:
    process = await asyncio.create_subprocess_exec(
        str(CSMS),
        "up",
        "--demo",
        "ten",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_environment(),
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    printed = " ".join(stderr.decode().replace("│", " ").split())
    assert "Invalid value for '--demo'" in printed, printed
    with suppress(ProcessLookupError):
        process.kill()

"""REST fuzzing (issue 14): schemathesis sends what the OpenAPI document allows, and what it
does not, to every operation of ``csms up`` with an admin's key; not one answer may be a
server error. Bounded examples and a fixed seed (``derandomize``), so a run is repeatable.
Beside it, what an attacker sends by hand: integers past 64 bits, a 100 MB body.

``csms up`` runs in a process of its own: schemathesis calls are synchronous.
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from tests.cluster import free_port

pytestmark = pytest.mark.integration

EXAMPLES = 6
START_TIMEOUT_S = 60.0


class Up:
    def __init__(self, api_url: str, headers: dict[str, str]) -> None:
        self.api_url = api_url
        self.headers = headers


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    api_port, ocpp_port = free_port(), free_port()
    env = os.environ | {
        # Every fuzzed call is served: the rate limit has tests of its own.
        "CSMS_API_RATE_PER_S": "100000",
        "CSMS_API_RATE_BURST": "100000",
        "CSMS_LOG_LEVEL": "ERROR",
        # A payment provider's webhook secret: the fuzzed webhook calls are then checked
        # (401 for an unsigned body) instead of answered 503 "no payment provider".
        "CSMS_BILLING_PAYMENT_WEBHOOK_SECRET": "fuzz-webhook-secret-0123456789abcdef",
    }
    log = (data_dir / "csms.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "csms_cli",
            "up",
            "--api-port",
            str(api_port),
            "--ocpp-port",
            str(ocpp_port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api_url = f"http://127.0.0.1:{api_port}"
    try:
        _wait_ready(api_url, process)
        key = (data_dir / "admin.key").read_text().strip()
        yield Up(api_url, {"Authorization": f"Bearer {key}"})
    finally:
        process.terminate()
        process.wait(30)
        log.close()
        errors = _server_errors(data_dir / "csms.log")
        assert not errors, "csms up logged unhandled errors:\n" + "\n".join(errors[:20])


def _wait_ready(api_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "csms up exited"
        try:
            if httpx.get(f"{api_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("csms up did not become ready")


def _server_errors(log: Path) -> list[str]:
    lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if "Traceback" in line or "unhandled" in line.lower()]


def _fuzz(
    operation: APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    up: Up,
    failures: list[str],
    unsatisfiable: list[str],
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,  # a fixed seed: the same cases every run
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case[Any]) -> None:
        response = case.call(base_url=up.api_url, headers=up.headers, timeout=30)
        if response.status_code >= 500:
            failures.append(
                f"{response.status_code} for {case.as_curl_command()}: {response.text[:300]}"
            )

    try:
        run()
    except Unsatisfiable:
        # Nothing invalid to send: an operation whose body is raw bytes (a signed webhook, an
        # upload) and that takes no parameters has no negative case.
        if mode is not GenerationMode.NEGATIVE:
            raise
        unsatisfiable.append(f"{operation.method.upper()} {operation.path}")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_a_server_error(up: Up, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{up.api_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the document itself is valid
        operations.append(result.ok())
    assert len(operations) > 100  # every service's, merged
    failures: list[str] = []
    unsatisfiable: list[str] = []
    for operation in operations:
        _fuzz(operation, mode, up, failures, unsatisfiable)
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures[:30])
    # Every /api/v1 operation has parameters or a JSON body to get wrong.
    assert not [name for name in unsatisfiable if " /api/" in name], unsatisfiable


def test_the_issues_integers_past_64_bits_are_422_not_500(up: Up) -> None:
    with httpx.Client(base_url=up.api_url, headers=up.headers, timeout=30) as client:
        stations = client.get("/api/v1/stations", params={"offset": "132677671060219674624"})
        schedule = client.delete("/api/v1/sites/depot-1/schedules/32589158477190044730")
    assert stations.status_code == 422, stations.text
    assert schedule.status_code in (404, 422), schedule.text
    assert stations.headers["content-type"] == "application/problem+json"


def _raw_request(api_url: str, head: bytes, body_chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send ``head`` then body chunks until the server answers or closes; its answer's first
    bytes, and how many body bytes went out."""
    host, port = api_url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(4096)
            if answer:
                break
            try:
                sock.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.settimeout(30)
        with contextlib.suppress(ConnectionResetError):
            while b"\r\n\r\n" not in answer:
                more = sock.recv(4096)
                if not more:
                    break
                answer += more
    return answer, sent


HUNDRED_MB = 100 * 1024 * 1024


def test_a_100_mb_body_is_413_before_it_is_read(up: Up) -> None:
    chunk = b"x" * (64 * 1024)
    token = up.headers["Authorization"].encode()
    declared = (
        b"PUT /api/v1/stations/CP-1 HTTP/1.1\r\nHost: csms\r\nAuthorization: " + token + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(HUNDRED_MB).encode() + b"\r\n"
        b"\r\n"
    )
    answer, sent = _raw_request(up.api_url, declared, iter([chunk] * (HUNDRED_MB // len(chunk))))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < HUNDRED_MB // 10  # refused on its Content-Length, not read

    chunked = (
        b"PUT /api/v1/stations/CP-1 HTTP/1.1\r\nHost: csms\r\nAuthorization: " + token + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    answer, sent = _raw_request(up.api_url, chunked, iter([framed] * (HUNDRED_MB // len(chunk))))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < HUNDRED_MB // 10  # cut off once past the limit (1 MiB)

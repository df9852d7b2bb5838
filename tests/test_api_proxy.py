"""One REST base URL for real: the compose proxy's nginx configuration, run by the real
nginx in front of real ``csms sessions``, ``csms smartcharging`` and ``csms security``
processes (against
the real Kafka, Redis and PostgreSQL).

The only changes to ``deploy/nginx/compose.conf`` are where things are on this machine:
the replicas' addresses (loopback ports instead of compose host names), the listen
port, and the directories for temporary files and the OpenAPI document. A header
with ``$upstream_addr`` tells the test which process answered.
"""

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cluster
from tests.cluster import Component, Infra, free_port
from tests.cluster_billing import billing
from tests.cluster_firmware import firmware
from tests.cluster_security import security
from tests.cluster_smartcharging import smartcharging
from tests.deploy_routing import COMPOSE_PROXY_CONF, OPENAPI_FILE, compose_upstreams
from tests.payment_provider import SECRET, Provider
from tests.test_api_routing import TABLE, nginx_binary

pytestmark = pytest.mark.integration

UPSTREAM_HEADER = "x-test-upstream"
_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass
class Proxy:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    replicas: dict[str, Component]
    admin: dict[str, str]  # the Authorization header of an admin API key

    def address_of(self, service: str) -> str:
        return f"127.0.0.1:{self.replicas[service].port}"


def _local_config(run_dir: Path, listen_port: int, ports: dict[str, int]) -> str:
    """deploy/nginx/compose.conf with this machine's addresses and directories."""
    config = COMPOSE_PROXY_CONF.read_text(encoding="utf-8")
    replica_service = {
        replica.split(":")[0]: service
        for service, replicas in compose_upstreams(TABLE).items()
        for replica in replicas
    }

    def to_loopback(match: re.Match[str]) -> str:
        return f"server 127.0.0.1:{ports[replica_service[match.group(1)]]}"

    config, replaced = re.subn(r"server ([\w.-]+):\d+", to_loopback, config)
    assert replaced == len(replica_service), "every compose replica is an upstream server"
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{listen_port};")
    config = config.replace("/tmp/", f"{run_dir}/")  # noqa: S108 (the config's own paths)
    config = config.replace("/srv/csms", str(run_dir / "srv"))
    config = config.replace("access_log /dev/stdout", f"access_log {run_dir}/access.log")
    return config.replace(
        "        proxy_http_version 1.1;",
        "        add_header X-Test-Upstream $upstream_addr always;\n"
        "        proxy_http_version 1.1;",
    )


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(f"nginx not serving: {log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def proxy(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    group = f"csms-proxy-{uuid.uuid4().hex[:8]}"
    logs = tmp_path_factory.mktemp("proxy-logs")
    replicas = {
        "sessions": cluster.sessions(infra, group, "sessions", logs),
        "smartcharging": smartcharging(infra, group, "smartcharging", logs),
        "security": security(infra, group, "security", logs, logs / "ca"),
        "firmware": firmware(infra, group, "firmware", logs),
        # The loopback provider's secret: its signed webhooks come through the proxy.
        "billing": billing(
            infra, group, "billing", logs, CSMS_BILLING_PAYMENT_WEBHOOK_SECRET=SECRET.decode()
        ),
    }
    assert set(replicas) == {service.name for service in TABLE.services}
    # The nginx workers run as nobody when the tests run as root: a directory they can read.
    run_dir = Path(tempfile.mkdtemp(prefix="csms-nginx-"))
    run_dir.chmod(0o755)
    (run_dir / "srv").mkdir(mode=0o755)
    (run_dir / "srv" / "openapi.json").write_bytes(OPENAPI_FILE.read_bytes())
    (run_dir / "srv" / "openapi.json").chmod(0o644)
    log = run_dir / "error.log"
    try:
        # Sessions first (it migrates the shared schemas), then the others at once.
        first, *others = replicas.values()
        first.start()
        cluster.start_together(others)
        port = free_port()  # only now: the replicas took seconds to start
        config = _local_config(run_dir, port, {name: c.port for name, c in replicas.items()})
        (run_dir / "nginx.conf").write_text(config, encoding="utf-8")
        with log.open("wb") as errors:
            command = [nginx_binary(), "-e", "stderr", "-p", str(run_dir), "-c", "nginx.conf"]
            process = subprocess.Popen(
                [*command, "-g", "daemon off;"],
                stdout=errors,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(url, process, log)
            admin = asyncio.run(cluster.admin_headers(infra))
            yield Proxy(url, process, log, replicas, admin)
        finally:
            process.terminate()
            process.wait(timeout=20)
    finally:
        cluster.stop_together(replicas.values())
        asyncio.run(cluster.retire_topics(infra.kafka_bootstrap, cluster.topic_prefix(group)))
        shutil.rmtree(run_dir, ignore_errors=True)


def _concrete(template: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, template)


def _operations() -> list[tuple[str, str, str]]:
    document: dict[str, Any] = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    return [
        (method, path, operation["x-csms-service"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in _METHODS
    ]


def test_every_operation_reaches_the_service_that_serves_it(proxy: Proxy) -> None:
    """Each documented operation, sent to the one base URL, is answered by its own
    service's process (whatever the answer: unknown ids get 404, empty bodies 422)."""
    witness = f"W{uuid.uuid4().hex[:8]}"
    operations = _operations()
    assert {service for _, _, service in operations} == {service.name for service in TABLE.services}
    with httpx.Client(base_url=proxy.url, timeout=30, headers=proxy.admin) as client:
        for method, template, service in operations:
            body: dict[str, str] | None = {} if method in {"put", "post", "patch"} else None
            response = client.request(method, _concrete(template, witness), json=body)
            where = f"{method.upper()} {template}: {response.status_code} {response.text[:200]}"
            assert response.headers.get(UPSTREAM_HEADER) == proxy.address_of(service), where
            assert response.status_code not in {502, 503, 504}, where


def test_resources_of_both_services_work_through_one_url(proxy: Proxy) -> None:
    station, site = f"CP-{uuid.uuid4().hex[:8]}", f"SITE-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=f"{proxy.url}/api/v1", timeout=30, headers=proxy.admin) as client:
        registered = client.put(f"/stations/{station}", json={})
        assert registered.status_code in {200, 201}, registered.text
        assert client.get(f"/stations/{station}").json()["station_id"] == station
        created = client.put(f"/sites/{site}", json={"name": "Depot", "limit_a": 63})
        assert created.status_code in {200, 201}, created.text
        assert client.get(f"/sites/{site}").json()["limit_a"] == 63
        placed = client.put(
            f"/sites/{site}/stations/{station}",
            json={"evses": [{"evse_id": 1, "max_a": 32}]},
        )
        assert placed.status_code in {200, 201}, placed.text
        assert placed.headers[UPSTREAM_HEADER] == proxy.address_of("smartcharging")
        limits = client.get(f"/stations/{station}/charging-limits")
        assert limits.status_code == 200, limits.text
        assert limits.headers[UPSTREAM_HEADER] == proxy.address_of("smartcharging")
        station_view = client.get(f"/stations/{station}")
        assert station_view.headers[UPSTREAM_HEADER] == proxy.address_of("sessions")


def test_the_proxy_serves_the_merged_openapi_and_the_docs(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        document = client.get("/openapi.json")
        assert document.status_code == 200
        assert document.headers["content-type"].startswith("application/json")
        assert document.json() == json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
        docs = client.get("/docs")
        assert docs.headers["content-type"].startswith("text/html")
        assert 'url: "/openapi.json"' in docs.text
        assert client.get("/healthz").json() == {"status": "ok"}


def test_a_path_no_service_serves_is_a_problem_json_404(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        for path in ("/api/v1/nowhere", "/api/v1/stationsX", "/api/v2/stations", "/"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json", path
            assert response.json() == {
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": "no CSMS service serves this path",
            }
            assert UPSTREAM_HEADER not in response.headers or not response.headers[UPSTREAM_HEADER]


def test_public_paths_reach_their_service_without_a_bearer_token(proxy: Proxy) -> None:
    """The payment provider's signed webhook, a driver's receipt and a station's log upload
    go through the one URL to their service, with no Authorization header."""
    provider = Provider(url="http://127.0.0.1:9")  # only its signing: billing asks no API
    headers, body = provider.webhook(f"pay-{uuid.uuid4().hex[:8]}", "CP-PROXY-NONE", 1)
    with httpx.Client(base_url=proxy.url, timeout=30) as client:
        paid = client.post("/payments/webhook", content=body, headers=headers)
        assert paid.status_code == 200, paid.text
        assert paid.headers[UPSTREAM_HEADER] == proxy.address_of("billing")
        assert paid.json()["status"] == "unmatched"  # no station waits for it: kept to refund
        unsigned = client.post("/payments/webhook", content=body)
        assert (unsigned.status_code, unsigned.json()["type"]) == (
            401,
            "urn:csms:problem:invalid-signature",
        )
        receipt = client.get("/receipts/no-such-receipt-id")
        assert receipt.status_code == 404
        assert receipt.headers[UPSTREAM_HEADER] == proxy.address_of("billing")
        assert receipt.json()["type"] == "urn:csms:problem:unknown-receipt"
        two_mib = b"x" * (2 << 20)
        # The service limits uploads itself: the proxy passes a large one through...
        upload = client.put("/firmware/uploads/no-such-token", content=two_mib)
        assert upload.headers.get(UPSTREAM_HEADER) == proxy.address_of("firmware"), upload.text
        assert upload.status_code in {401, 403, 404}, upload.text
        # ...where the API keeps the proxy's 1 MB bound on request bodies.
        too_large = client.put("/api/v1/tariffs/T", content=two_mib, headers=proxy.admin)
        assert too_large.status_code == 413
        assert not too_large.headers.get(UPSTREAM_HEADER)


def test_a_service_that_is_down_is_a_problem_json_503(proxy: Proxy) -> None:
    """Runs last in this module: it stops the smart charging process."""
    proxy.replicas["smartcharging"].stop()
    with httpx.Client(base_url=f"{proxy.url}/api/v1", timeout=10, headers=proxy.admin) as client:
        down = client.get("/sites")
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == "application/problem+json"
        assert down.headers["retry-after"] == "5"
        assert down.json()["type"] == "urn:csms:problem:service-unavailable"
        assert client.get("/stations").status_code == 200  # the other service still answers

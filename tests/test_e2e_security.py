"""The security block on the real path: ``csms gateway`` (TLS), ``csms sessions`` and two
``csms security`` replicas as processes, on real Kafka, Redis and PostgreSQL.

A station of each version asks for a certificate, gets exactly one CertificateSigned
(two replicas consume the group and run the issuer), and connects with it in security
profile 3; its security event is listed over REST.
"""

import asyncio
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import ocpp.v16
import ocpp.v21
import ocpp.v201
import pytest
import trustme

from tests import cluster
from tests.cluster import Component, Infra
from tests.cluster_security import ORGANIZATION, reset_security, security
from tests.conftest import reset_state
from tests.security_stations import StationState, secure_station
from tests.stations import boot_call, heartbeat_call
from tests.waiting import eventually

pytestmark = pytest.mark.integration

MODULES = {"1.6": ocpp.v16, "2.0.1": ocpp.v201, "2.1": ocpp.v21}


@dataclass
class SecureCluster:
    gateway: Component
    sessions: Component
    security: list[Component]
    operator_ca: trustme.CA
    admin: dict[str, str]

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.gateway.port}"

    def api(self, replica: int = 0) -> httpx.AsyncClient:
        port = self.security[replica].port
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30, headers=self.admin
        )

    def server_trust(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.operator_ca.configure_trust(context)
        return context


@pytest.fixture(scope="module")
def secure_cluster(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureCluster]:
    reset_state(infra)
    reset_security(infra)
    group = f"csms-sec-{uuid.uuid4().hex[:8]}"
    logs = tmp_path_factory.mktemp("security-logs")
    ca_dir = logs / "ca"  # both replicas share it: the first creates the CA
    operator_ca = trustme.CA()
    tls = _server_files(logs, operator_ca)
    sessions = cluster.sessions(
        infra, group, "sessions", logs, CSMS_UNKNOWN_STATION_POLICY="accept"
    )
    replicas = [security(infra, group, f"security-{n}", logs, ca_dir) for n in (1, 2)]
    gateway = cluster.gateway(
        infra,
        group,
        f"gw-sec-{uuid.uuid4().hex[:4]}",
        logs,
        CSMS_TLS_CERT_FILE=str(tls[0]),
        CSMS_TLS_KEY_FILE=str(tls[1]),
        CSMS_TLS_CLIENT_CA_FILE=str(ca_dir / "ca.pem"),
        CSMS_DECISION_TIMEOUT_S="15",
    )
    gateway.tls = ssl.create_default_context()
    operator_ca.configure_trust(gateway.tls)
    components = [sessions, *replicas, gateway]
    try:
        sessions.start()
        for replica in replicas:  # the CA exists once the first is healthy
            replica.start()
        gateway.start()
        admin = asyncio.run(cluster.admin_headers(infra))
        yield SecureCluster(gateway, sessions, replicas, operator_ca, admin)
    finally:
        for component in reversed(components):
            component.stop()
        asyncio.run(cluster.delete_topics(infra.kafka_bootstrap, cluster.topic_prefix(group)))


def _server_files(directory: Path, operator_ca: trustme.CA) -> tuple[Path, Path]:
    server = operator_ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = directory / "server-chain.pem", directory / "server-key.pem"
    cert_file.write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


@pytest.mark.parametrize(
    ("version", "case"), [("1.6", "tc_074"), ("2.0.1", "tc_a_11"), ("2.1", "tc_a_11")]
)
async def test_csr_round_trip_on_the_real_path_ends_in_profile_3(
    secure_cluster: SecureCluster, version: str, case: str
) -> None:
    station_id = f"E2E-{case}-{uuid.uuid4().hex[:6]}"
    state = StationState(station_id, ORGANIZATION)
    module = MODULES[version]
    tls = state.tls(secure_cluster.server_trust(), with_certificate=False)
    async with (
        secure_station(secure_cluster.wss_url, state, version, tls=tls) as station,
        secure_cluster.api(1) as api,
    ):
        await station.call(boot_call(version))
        signed = await station.sign("ChargingStationCertificate" if version != "1.6" else None)
        assert signed.status == "Accepted"

        async def active() -> bool:
            body = (await api.get(f"/stations/{station_id}/certificates")).json()
            return [item["status"] for item in body["items"]] == ["active"]

        await eventually(active, timeout_s=60)
        await station.call(
            module.call.SecurityEventNotification(
                type="TamperDetectionActivated",
                timestamp="2025-03-01T10:00:00Z",
                tech_info="lid opened",
            )
        )
    # Exactly one certificate, though two replicas run the issuer.
    assert [action for action, _ in state.received].count("CertificateSigned") == 1
    tls = state.tls(secure_cluster.server_trust(), with_certificate=True)
    async with secure_station(secure_cluster.wss_url, state, version, tls=tls) as station:
        await station.call(heartbeat_call(version))
    async with secure_cluster.api(0) as api:

        async def recorded() -> list[dict[str, object]] | None:
            body = (await api.get(f"/stations/{station_id}/security-events")).json()
            return body["items"] or None

        (event,) = await eventually(recorded, timeout_s=60)
        assert event["type"] == "TamperDetectionActivated"
        assert event["severity"] == "critical"
        ca = await api.get("/certificates/ca")
        assert ca.status_code == 200 and "BEGIN CERTIFICATE" in ca.text

"""The security block on the real path: ``csms gateway`` (TLS), ``csms sessions`` and two
``csms security`` replicas as processes, on real Kafka, Redis and PostgreSQL.

A station of each version asks for a certificate, gets exactly one CertificateSigned
(two replicas consume the group and run the issuer), and connects with it in security
profile 3; its security event is listed over REST. A Plug & Charge Authorize gets the
sessions service's decision and the security service's contract check (a real OCSP
responder on loopback) in one answer.
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
from cryptography import x509

from csms_security.hashdata import hash_data
from tests import cluster
from tests.cluster import Component, Infra
from tests.cluster_security import ORGANIZATION, reset_security, security
from tests.conftest import reset_state
from tests.pki import OcspResponder, TestCa, ec_key, name, pem, serving
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
    mo: TestCa  # the Plug & Charge PKI's MO sub-CA, trusted by the security replicas

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
    mo = TestCa.root("E2E V2G Root").sub_ca("E2E MO Sub-CA")
    trust_file = logs / "pnc-trust.pem"
    trust_file.write_text(pem(mo.certificate))
    pnc = {
        "CSMS_SECURITY_PNC_TRUST_FILE": str(trust_file),
        "CSMS_SECURITY_PKI_ALLOW_PRIVATE_ADDRESSES": "true",  # the responder is on loopback
    }
    sessions = cluster.sessions(
        infra, group, "sessions", logs, CSMS_UNKNOWN_STATION_POLICY="accept"
    )
    replicas = [security(infra, group, f"security-{n}", logs, ca_dir, **pnc) for n in (1, 2)]
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
        replicas[0].start()  # the CA exists once the first is healthy
        cluster.start_together([*replicas[1:], gateway])
        admin = asyncio.run(cluster.admin_headers(infra))
        yield SecureCluster(gateway, sessions, replicas, operator_ca, admin, mo)
    finally:
        cluster.stop_together(components)
        asyncio.run(cluster.retire_topics(infra.kafka_bootstrap, cluster.topic_prefix(group)))


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


async def test_tc_c_50_tc_c_51_plug_and_charge_authorize_on_the_real_path(
    secure_cluster: SecureCluster,
) -> None:
    """The gateway waits for both parts of the answer through Redis: sessions' idTokenInfo
    for the eMAID and security's certificateStatus from the OCSP responder the hash data
    names; a revoked contract makes the token Invalid (2.0.1 C07.FR.16)."""
    emaid = f"DEE2E{uuid.uuid4().hex[:8].upper()}"
    sessions_api = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{secure_cluster.sessions.port}/api/v1",
        timeout=30,
        headers=secure_cluster.admin,
    )
    async with sessions_api:
        put = await sessions_api.put(
            f"/id-tokens/{emaid}", json={"type": "eMAID", "status": "Accepted"}
        )
        assert put.status_code in (200, 201), put.text
    mo = secure_cluster.mo
    responder = OcspResponder(mo)
    async with serving(responder.app) as url:
        good, revoked = (
            mo.issue(name(emaid), ec_key().public_key(), ocsp_url=url + "/") for _ in range(2)
        )
        mo.revoke(revoked)

        def authorize(certificate: x509.Certificate) -> ocpp.v201.call.Authorize:
            data = hash_data(certificate, mo.certificate)
            entry = {
                "hash_algorithm": data.hash_algorithm.value,
                "issuer_name_hash": data.issuer_name_hash,
                "issuer_key_hash": data.issuer_key_hash,
                "serial_number": data.serial_number,
                "responder_url": url + "/",
            }
            token = {"id_token": emaid, "type": "eMAID"}
            return ocpp.v201.call.Authorize(id_token=token, iso15118_certificate_hash_data=[entry])

        state = StationState(f"E2E-PNC-{uuid.uuid4().hex[:6]}", ORGANIZATION)
        tls = state.tls(secure_cluster.server_trust(), with_certificate=False)
        async with secure_station(secure_cluster.wss_url, state, "2.0.1", tls=tls) as station:
            await station.call(boot_call("2.0.1"))
            accepted = await station.call(authorize(good))
            refused = await station.call(authorize(revoked))
    assert (accepted.id_token_info["status"], accepted.certificate_status) == (
        "Accepted",
        "Accepted",
    )
    assert (refused.id_token_info["status"], refused.certificate_status) == (
        "Invalid",
        "CertificateRevoked",
    )
    assert responder.requests == 2

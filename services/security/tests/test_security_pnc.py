"""Plug & Charge: OCSP and CRL checks against a real responder on loopback, contract
chains, Authorize certificateStatus, and the contract-certificate provider."""

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from csms_ocpp import OcppVersion, schemas
from csms_ocpp.messages import GetCertificateChainStatusRequest, GetCertificateStatusRequest
from csms_security.hashdata import HashAlgorithm, OcspRequestData, as_hex_hashes, hash_data
from csms_security.pnc.contracts import ContractRequest, HttpContractProvider, NoContractProvider
from csms_security.pnc.revocation import CertificateStatus, RevocationClient
from csms_security.pnc.status import (
    AuthorizeCertificateStatus,
    authorize_status,
    certificate_status,
    chain_status,
)
from csms_security.pnc.trust import TrustStore
from tests.pki import (
    ContractProviderServer,
    OcspResponder,
    TestCa,
    ec_key,
    name,
    pem,
    serving,
)


@dataclass
class Pki:
    """A V2G-style PKI: root → MO sub-CA → contract certificates, with an OCSP responder."""

    root: TestCa
    mo: TestCa
    responder: OcspResponder
    url: str

    def contract(self, emaid: str = "DEABCC1234567") -> x509.Certificate:
        return self.mo.issue(name(emaid, "Test MO"), ec_key().public_key(), ocsp_url=self.url)

    def request(self, certificate: x509.Certificate, url: str | None = None) -> OcspRequestData:
        data = hash_data(certificate, self.mo.certificate)
        return OcspRequestData(**data.model_dump(), responder_url=url or self.url)


@pytest.fixture
async def pki() -> AsyncIterator[Pki]:
    root = TestCa.root("Test V2G Root")
    mo = root.sub_ca("Test MO Sub-CA")
    responder = OcspResponder(mo)
    async with serving(responder.app) as url:
        yield Pki(root, mo, responder, url + "/")


@pytest.fixture
def trust(pki: Pki) -> TrustStore:
    return TrustStore((pki.root.certificate, pki.mo.certificate))


@pytest.fixture
async def revocation(trust: TrustStore) -> AsyncIterator[RevocationClient]:
    client = RevocationClient(trust, timeout_s=2, allow_private=True)
    yield client
    await client.aclose()


def test_hash_data_names_a_certificate_as_ocsp_does(pki: Pki) -> None:
    contract = pki.contract()
    data = hash_data(contract, pki.mo.certificate, HashAlgorithm.SHA384)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(contract, pki.mo.certificate, HashAlgorithm.SHA384.hash())
        .build()
    )
    assert data.issuer_name_hash == request.issuer_name_hash.hex()
    assert len(data.issuer_name_hash) == 96  # SHA-384, hex
    assert data.serial_number == format(contract.serial_number, "x")
    assert not data.serial_number.startswith("0")


async def test_tc_m_24_ocsp_good(pki: Pki, revocation: RevocationClient) -> None:
    answer = await revocation.check_ocsp(pki.request(pki.contract()))
    assert answer.status is CertificateStatus.GOOD
    assert answer.verified
    assert answer.next_update > datetime.now(UTC)
    assert ocsp.load_der_ocsp_response(answer.response_der or b"").serial_number


async def test_ocsp_revoked(pki: Pki, revocation: RevocationClient) -> None:
    contract = pki.contract()
    pki.mo.revoke(contract)
    answer = await revocation.check_ocsp(pki.request(contract))
    assert answer.status is CertificateStatus.REVOKED


async def test_ocsp_unknown_certificate(pki: Pki, revocation: RevocationClient) -> None:
    known = hash_data(pki.contract(), pki.mo.certificate)
    data = known.model_copy(update={"serial_number": "1234abcd"})  # a serial it never issued
    answer = await revocation.check_ocsp(
        OcspRequestData(**data.model_dump(), responder_url=pki.url)
    )
    assert answer.status is CertificateStatus.UNKNOWN


async def test_ocsp_answers_are_cached_until_next_update(
    pki: Pki, revocation: RevocationClient
) -> None:
    request = pki.request(pki.contract())
    for _ in range(3):
        assert (await revocation.check_ocsp(request)).status is CertificateStatus.GOOD
    assert pki.responder.requests == 1


async def test_a_delegated_ocsp_signer_is_accepted(pki: Pki, trust: TrustStore) -> None:
    delegate_key = ec_key()
    delegate = pki.mo.issue(name("MO OCSP"), delegate_key.public_key(), ocsp_signing=True)
    responder = OcspResponder(pki.mo, delegate=(delegate, delegate_key))
    async with serving(responder.app) as url:
        client = RevocationClient(trust, timeout_s=2, allow_private=True)
        answer = await client.check_ocsp(pki.request(pki.contract(), url + "/"))
        await client.aclose()
    assert answer.status is CertificateStatus.GOOD and answer.verified


async def test_an_ocsp_answer_signed_by_a_stranger_fails(pki: Pki, trust: TrustStore) -> None:
    """A responder that is not the issuer nor its delegate could say anything."""
    impostor = TestCa.root("Impostor")
    forged = OcspResponder(pki.mo, delegate=(impostor.certificate, impostor.key))
    async with serving(forged.app) as url:
        client = RevocationClient(trust, timeout_s=2, allow_private=True)
        answer = await client.check_ocsp(pki.request(pki.contract(), url + "/"))
        await client.aclose()
    assert answer.status is CertificateStatus.FAILED
    assert "signature" in answer.detail


async def test_an_unreachable_responder_fails(pki: Pki, revocation: RevocationClient) -> None:
    answer = await revocation.check_ocsp(pki.request(pki.contract(), "http://127.0.0.1:9/"))
    assert answer.status is CertificateStatus.FAILED
    assert answer.response_der is None


async def test_crl_good_and_revoked(pki: Pki, revocation: RevocationClient) -> None:
    good, bad = pki.contract(), pki.contract()
    pki.mo.revoke(bad)
    crl_url = pki.url + "crl"
    good_id = hash_data(good, pki.mo.certificate)
    bad_id = hash_data(bad, pki.mo.certificate)
    assert (await revocation.check_crl(good_id, crl_url)).status is CertificateStatus.GOOD
    assert (await revocation.check_crl(bad_id, crl_url)).status is CertificateStatus.REVOKED


# -- the OCPP answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21])
async def test_tc_m_24_get_certificate_status_answers_ocsp_result(
    pki: Pki, revocation: RevocationClient, version: OcppVersion
) -> None:
    payload: GetCertificateStatusRequest = {
        "ocspRequestData": pki.request(pki.contract()).wire() | {"responderURL": pki.url}
    }
    assert schemas.validate(version, "GetCertificateStatus", payload) is None
    answer = await certificate_status(revocation, payload, version.number)
    assert schemas.validate(version, "GetCertificateStatus", answer, response=True) is None
    assert answer["status"] == "Accepted"
    # ocspResult (never "ocspResponse"): the DER OCSPResponse, base64 (2.0.1 M06.FR.xx).
    der = base64.b64decode(answer["ocspResult"])
    assert ocsp.load_der_ocsp_response(der).certificate_status is ocsp.OCSPCertStatus.GOOD


async def test_get_certificate_status_failed_without_a_responder(
    pki: Pki, revocation: RevocationClient
) -> None:
    request = pki.request(pki.contract(), "http://127.0.0.1:9/")
    answer = await certificate_status(
        revocation, {"ocspRequestData": request.wire() | {"responderURL": "http://127.0.0.1:9/"}},
        "2.0.1",
    )  # fmt: skip
    assert answer["status"] == "Failed"
    assert "ocspResult" not in answer
    assert schemas.validate(OcppVersion.V201, "GetCertificateStatus", answer, response=True) is None


async def test_get_certificate_chain_status_by_ocsp_and_crl(
    pki: Pki, revocation: RevocationClient
) -> None:
    good, bad = pki.contract(), pki.contract()
    pki.mo.revoke(bad)
    payload: GetCertificateChainStatusRequest = {
        "certificateStatusRequests": [
            {
                "certificateHashData": hash_data(good, pki.mo.certificate).wire(),
                "source": "OCSP",
                "urls": ["http://127.0.0.1:9/", pki.url],  # the first one is down
            },
            {
                "certificateHashData": hash_data(bad, pki.mo.certificate).wire(),
                "source": "CRL",
                "urls": [pki.url + "crl"],
            },
        ]
    }
    assert schemas.validate(OcppVersion.V21, "GetCertificateChainStatus", payload) is None
    answer = await chain_status(revocation, payload)
    assert (
        schemas.validate(OcppVersion.V21, "GetCertificateChainStatus", answer, response=True)
        is None
    )
    assert [entry["status"] for entry in answer["certificateStatus"]] == ["Good", "Revoked"]
    assert [entry["source"] for entry in answer["certificateStatus"]] == ["OCSP", "CRL"]


async def test_tc_c_50_authorize_with_hash_data_good_and_revoked(
    pki: Pki, revocation: RevocationClient, trust: TrustStore
) -> None:
    good, bad = pki.contract(), pki.contract()
    pki.mo.revoke(bad)

    def authorize(*certificates: x509.Certificate) -> dict[str, object]:
        return {
            "idToken": {"idToken": "DEABCC1234567", "type": "eMAID"},
            "iso15118CertificateHashData": [pki.request(c).wire() for c in certificates],
        }

    accepted = await authorize_status(revocation, trust, authorize(good))
    assert accepted is AuthorizeCertificateStatus.ACCEPTED
    revoked = await authorize_status(revocation, trust, authorize(good, bad))
    assert revoked is AuthorizeCertificateStatus.CERTIFICATE_REVOKED


async def test_tc_c_52_central_contract_validation(
    pki: Pki, revocation: RevocationClient, trust: TrustStore
) -> None:
    contract = pki.contract()
    chain = pem(contract) + pem(pki.mo.certificate)
    token = {"idToken": "DEABCC1234567", "type": "eMAID"}
    status = await authorize_status(revocation, trust, {"idToken": token, "certificate": chain})
    assert status is AuthorizeCertificateStatus.ACCEPTED
    pki.mo.revoke(contract)
    revocation_fresh = RevocationClient(trust, timeout_s=2, allow_private=True)
    revoked = await authorize_status(
        revocation_fresh, trust, {"idToken": token, "certificate": chain}
    )
    await revocation_fresh.aclose()
    assert revoked is AuthorizeCertificateStatus.CERTIFICATE_REVOKED


async def test_contract_chains_that_do_not_verify(
    pki: Pki, revocation: RevocationClient, trust: TrustStore
) -> None:
    token = {"idToken": "X", "type": "eMAID"}
    stranger = TestCa.root("Stranger").issue(name("X"), ec_key().public_key())
    expired = pki.mo.issue(
        name("X"), ec_key().public_key(),
        not_before=datetime.now(UTC) - timedelta(days=60), valid_for=timedelta(days=30),
    )  # fmt: skip
    cases = {
        pem(stranger): AuthorizeCertificateStatus.CERT_CHAIN_ERROR,
        pem(expired) + pem(pki.mo.certificate): AuthorizeCertificateStatus.CERTIFICATE_EXPIRED,
        "garbage": AuthorizeCertificateStatus.CERT_CHAIN_ERROR,
    }
    for chain, expected in cases.items():
        status = await authorize_status(revocation, trust, {"idToken": token, "certificate": chain})
        assert status is expected


async def test_authorize_without_iso15118_data_gets_no_certificate_status(
    revocation: RevocationClient, trust: TrustStore
) -> None:
    payload = {"idToken": {"idToken": "04A1B2", "type": "ISO14443"}}
    assert await authorize_status(revocation, trust, payload) is None


# -- the contract-certificate provider ----------------------------------------------------------


def contract_request() -> ContractRequest:
    return ContractRequest(
        station_id="CP-1",
        iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
        action="Install",
        exi_request=base64.b64encode(b"certificate installation req").decode(),
    )


async def test_tc_m_26_the_http_provider_forwards_the_exi_request() -> None:
    provider_server = ContractProviderServer(token="pki-token")
    async with serving(provider_server.app) as url:
        provider = HttpContractProvider(url + "/", timeout_s=2, token="pki-token")
        answer = await provider.get_certificate(contract_request())
        await provider.aclose()
    assert answer.status == "Accepted"
    assert base64.b64decode(answer.exi_response) == b"EXI:certificate installation req"
    assert provider_server.received[0]["stationId"] == "CP-1"
    assert provider_server.received[0]["iso15118SchemaVersion"] == "urn:iso:15118:2:2013:MsgDef"


async def test_a_provider_refusing_our_token_is_failed() -> None:
    provider_server = ContractProviderServer(token="pki-token")
    async with serving(provider_server.app) as url:
        provider = HttpContractProvider(url + "/", timeout_s=2, token="wrong")
        answer = await provider.get_certificate(contract_request())
        await provider.aclose()
    assert answer.status == "Failed" and answer.exi_response == ""
    assert answer.reason == "provider answered HTTP 401"


async def test_without_a_provider_the_answer_is_failed_with_exi_response() -> None:
    answer = await NoContractProvider().get_certificate(contract_request())
    wire = answer.model_dump(by_alias=True, exclude_none=True)
    assert wire == {"status": "Failed", "exiResponse": ""}
    assert schemas.validate(OcppVersion.V201, "Get15118EVCertificate", wire, response=True) is None


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/", "http://169.254.169.254/latest/", "http://10.0.0.1/", "file:///etc/passwd",
     "ftp://ocsp.example/", "http://[::1]/"],
)  # fmt: skip
async def test_a_station_cannot_make_the_csms_fetch_private_addresses(
    pki: Pki, trust: TrustStore, url: str
) -> None:
    """SSRF: by default only public http(s) responders are asked (no request is sent)."""
    guarded = RevocationClient(trust, timeout_s=2)
    answer = await guarded.check_ocsp(pki.request(pki.contract(), url))
    crl = await guarded.check_crl(hash_data(pki.contract(), pki.mo.certificate), url)
    await guarded.aclose()
    assert answer.status is CertificateStatus.FAILED and "not allowed" in answer.detail
    assert crl.status is CertificateStatus.FAILED and "not allowed" in crl.detail
    assert pki.responder.requests == 0


def test_base64_issuer_hashes_are_read_as_the_bytes_they_encode(pki: Pki) -> None:
    """Some stations send base64 where OCPP asks for hexadecimal: taken when it decodes to
    the digest size; hexadecimal stays as it is, anything else is left to be refused."""
    wire = pki.request(pki.contract()).model_dump(by_alias=True, mode="json")
    encoded = wire | {
        name: base64.b64encode(bytes.fromhex(wire[name])).decode()
        for name in ("issuerNameHash", "issuerKeyHash")
    }
    assert as_hex_hashes(encoded) == wire
    assert as_hex_hashes(wire) == wire
    short = wire | {"issuerNameHash": base64.b64encode(b"too short").decode()}
    assert as_hex_hashes(short) == short

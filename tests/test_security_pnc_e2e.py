"""Plug & Charge through a real gateway: GetCertificateStatus (OCSP on loopback),
Get15118EVCertificate (a contract-certificate provider on loopback) and, in 2.1,
GetCertificateChainStatus; stations are the ``ocpp`` package's clients."""

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ocpp.v21
import ocpp.v201
import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from ocpp.exceptions import OCPPError

from csms_core.db import session_factory
from csms_security.hashdata import hash_data
from csms_sessions.tokens.models import IdToken, TokenStatus
from tests.pki import ContractProviderServer, OcspResponder, TestCa, ec_key, name, pem, serving
from tests.security_harness import ORGANIZATION, Csms, running_csms
from tests.security_stations import StationState, secure_station
from tests.stations import boot_call

MODULES = {"2.0.1": ocpp.v201, "2.1": ocpp.v21}


@dataclass
class Pnc:
    csms: Csms
    mo: TestCa
    ocsp_url: str
    provider: ContractProviderServer
    responder: OcspResponder


@pytest.fixture
async def pnc(tmp_path: Path) -> AsyncIterator[Pnc]:
    root = TestCa.root("V2G Root")
    mo = root.sub_ca("MO Sub-CA")
    trust_file = tmp_path / "pnc-trust.pem"
    trust_file.write_text(pem(root.certificate) + pem(mo.certificate))
    provider = ContractProviderServer(token="pki-token")
    responder = OcspResponder(mo)
    async with serving(responder.app) as ocsp_url, serving(provider.app) as provider_url:
        settings = {
            "pnc_trust_file": trust_file,
            "contract_provider_url": provider_url + "/",
            "contract_provider_token": "pki-token",
        }
        async with running_csms(tmp_path, security=settings) as csms:
            yield Pnc(csms, mo, ocsp_url + "/", provider, responder)


def ocsp_data(pnc: Pnc, revoked: bool = False) -> dict[str, str]:
    contract = pnc.mo.issue(name("DEABCC0000001"), ec_key().public_key())
    if revoked:
        pnc.mo.revoke(contract)
    data = hash_data(contract, pnc.mo.certificate)
    return {
        "hash_algorithm": data.hash_algorithm.value,
        "issuer_name_hash": data.issuer_name_hash,
        "issuer_key_hash": data.issuer_key_hash,
        "serial_number": data.serial_number,
        "responder_url": pnc.ocsp_url,
    }


async def connected(pnc: Pnc, station_id: str, version: str) -> AsyncIterator[object]:
    state = StationState(station_id, ORGANIZATION)
    tls = state.tls(pnc.csms.server_trust(), with_certificate=False)
    async with secure_station(pnc.csms.wss_url, state, version, tls=tls) as station:
        await station.call(boot_call(version))
        yield station


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_tc_m_24_get_certificate_status_good_and_revoked(pnc: Pnc, version: str) -> None:
    module = MODULES[version]
    async for station in connected(pnc, f"CP-OCSP-{version}".replace(".", ""), version):
        good = await station.call(  # type: ignore[attr-defined]
            module.call.GetCertificateStatus(ocsp_request_data=ocsp_data(pnc))
        )
        revoked = await station.call(  # type: ignore[attr-defined]
            module.call.GetCertificateStatus(ocsp_request_data=ocsp_data(pnc, revoked=True))
        )
    statuses = []
    for answer in (good, revoked):
        assert answer.status == "Accepted"
        response = ocsp.load_der_ocsp_response(base64.b64decode(answer.ocsp_result))
        statuses.append(response.certificate_status)
    assert statuses == [ocsp.OCSPCertStatus.GOOD, ocsp.OCSPCertStatus.REVOKED]
    assert pnc.responder.requests == 2  # the responder the station named was asked


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_tc_m_26_get_15118_ev_certificate_goes_to_the_provider(
    pnc: Pnc, version: str
) -> None:
    """The EXI goes to the provider and its answer back unchanged, with each version's
    fields: 2.1 adds maximumContractCertificateChains / prioritizedEMAIDs (forwarded) and
    remainingContracts (answered; a 2.0.1 answer has no such field)."""
    exi = base64.b64encode(b"CertificateInstallationReq").decode()
    async for station in connected(pnc, station_id(version), version):
        if version == "2.0.1":
            request = ocpp.v201.call.Get15118EVCertificate(
                iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                action="Install",
                exi_request=exi,
            )
        else:
            request = Fixed21.Get15118EVCertificate(
                iso_15118_schema_version="urn:iso:15118:20:2022:MsgDef",
                action="Install",
                exi_request=exi,
                maximum_contract_certificate_chains=2,
                prioritizedEMAIDs=["DEABCC0000001"],
            )
        answer = await station.call(request)  # type: ignore[attr-defined]
    assert answer.status == "Accepted"
    assert base64.b64decode(answer.exi_response) == b"EXI:CertificateInstallationReq"
    (forwarded,) = pnc.provider.received
    assert (forwarded["action"], forwarded["stationId"]) == ("Install", station_id(version))
    if version == "2.1":
        assert answer.remaining_contracts == 1
        assert forwarded["maximumContractCertificateChains"] == 2
        assert forwarded["prioritizedEMAIDs"] == ["DEABCC0000001"]
    else:
        assert not hasattr(answer, "remaining_contracts")
        assert "maximumContractCertificateChains" not in forwarded


class Fixed21:
    @dataclass
    class Get15118EVCertificate:
        """2.1's request as the ``ocpp`` package's, but for the field it misspells
        (``prioritized_emaids`` goes out as ``prioritizedEmaids``: the schema refuses it);
        the class name is the action."""

        iso_15118_schema_version: str
        action: str
        exi_request: str
        maximum_contract_certificate_chains: int
        prioritizedEMAIDs: list[str]  # sent as is


def station_id(version: str) -> str:
    return f"CP-EV-CERT-{version}".replace(".", "")


async def test_tc_m_28_update_failed_by_the_provider(pnc: Pnc) -> None:
    pnc.provider.status = "Failed"
    async for station in connected(pnc, "CP-EV-UPDATE", "2.0.1"):
        answer = await station.call(  # type: ignore[attr-defined]
            ocpp.v201.call.Get15118EVCertificate(
                iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                action="Update",
                exi_request=base64.b64encode(b"CertificateUpdateReq").decode(),
            )
        )
    assert answer.status == "Failed"


async def test_get_certificate_chain_status_2_1(pnc: Pnc) -> None:
    data = ocsp_data(pnc, revoked=True)
    entry = {
        "certificate_hash_data": {k: v for k, v in data.items() if k != "responder_url"},
        "source": "OCSP",
        "urls": [pnc.ocsp_url],
    }
    async for station in connected(pnc, "CP-CHAIN", "2.1"):
        answer = await station.call(  # type: ignore[attr-defined]
            ocpp.v21.call.GetCertificateChainStatus(certificate_status_requests=[entry])
        )
    assert [item["status"] for item in answer.certificate_status] == ["Revoked"]


async def test_without_a_provider_get_15118_ev_certificate_is_failed(tmp_path: Path) -> None:
    async with running_csms(tmp_path) as csms:
        root = TestCa.root()
        pnc = Pnc(csms, root, "http://127.0.0.1:9/", ContractProviderServer(), OcspResponder(root))
        async for station in connected(pnc, "CP-NO-PKI", "2.0.1"):
            answer = await station.call(  # type: ignore[attr-defined]
                ocpp.v201.call.Get15118EVCertificate(
                    iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                    action="Install",
                    exi_request="AAAA",
                )
            )
    assert answer.status == "Failed" and answer.exi_response == ""


# -- Authorize with ISO 15118 contract data (2.0.1 C07) -----------------------------------------

EMAID = "DEABCC0000042"


async def known_emaid(pnc: Pnc, emaid: str = EMAID) -> None:
    """The eMAID is a token the CSMS knows as valid (the cases' prerequisite)."""
    assert pnc.csms.engine is not None
    async with session_factory(pnc.csms.engine)() as session, session.begin():
        session.add(IdToken(id_token=emaid, type="eMAID", status=TokenStatus.ACCEPTED))


def contract(pnc: Pnc, *, revoked: bool = False) -> x509.Certificate:
    certificate = pnc.mo.issue(name(EMAID, "Test MO"), ec_key().public_key(), ocsp_url=pnc.ocsp_url)
    if revoked:
        pnc.mo.revoke(certificate)
    return certificate


def hash_entry(pnc: Pnc, certificate: x509.Certificate, url: str | None = None) -> dict[str, str]:
    """An OCSPRequestDataType for ``certificate`` (snake_case, as the ocpp package takes it)."""
    data = hash_data(certificate, pnc.mo.certificate)
    return {
        "hash_algorithm": data.hash_algorithm.value,
        "issuer_name_hash": data.issuer_name_hash,
        "issuer_key_hash": data.issuer_key_hash,
        "serial_number": data.serial_number,
        "responder_url": url or pnc.ocsp_url,
    }


def authorize(version: str, **iso15118: Any) -> Any:
    """An AuthorizeRequest for the eMAID with hash data (``hash_data=``) or a chain."""
    token = {"id_token": EMAID, "type": "eMAID"}
    if "hash_data" in iso15118:
        field = "iso15118_certificate_hash_data"
        if version == "2.1":
            field = "iso_15118_certificate_hash_data"  # the ocpp package's 2.1 spelling
        return MODULES[version].call.Authorize(id_token=token, **{field: iso15118["hash_data"]})
    return MODULES[version].call.Authorize(id_token=token, **iso15118)


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_tc_c_50_tc_c_51_authorize_with_hash_data_good_and_revoked(
    pnc: Pnc, version: str
) -> None:
    """TC_C_50: the contract's hash data is checked with the responder it names (a real
    OCSP responder on loopback): Accepted. TC_C_51 (C07.FR.16): revoked →
    certificateStatus CertificateRevoked and idTokenInfo.status Invalid."""
    await known_emaid(pnc)
    good, revoked = contract(pnc), contract(pnc, revoked=True)
    asked_before = pnc.responder.requests
    async for station in connected(pnc, f"CP-PNC-HASH-{version}".replace(".", ""), version):
        accepted = await station.call(authorize(version, hash_data=[hash_entry(pnc, good)]))  # type: ignore[attr-defined]
        refused = await station.call(  # type: ignore[attr-defined]
            authorize(version, hash_data=[hash_entry(pnc, good), hash_entry(pnc, revoked)])
        )
    assert (accepted.id_token_info["status"], accepted.certificate_status) == (
        "Accepted",
        "Accepted",
    )
    assert (refused.id_token_info["status"], refused.certificate_status) == (
        "Invalid",
        "CertificateRevoked",
    )
    # The good contract was asked about once (then cached until nextUpdate), the revoked once.
    assert pnc.responder.requests - asked_before == 2


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_tc_c_52_authorize_with_the_contract_chain_central_validation(
    pnc: Pnc, version: str
) -> None:
    """TC_C_52: the station sends the contract certificate chain; the CSMS verifies it
    against its trust anchors (CSMS_SECURITY_PNC_TRUST_FILE) and asks the OCSP responder
    the contract names (AIA)."""
    await known_emaid(pnc)
    chain = pem(contract(pnc)) + pem(pnc.mo.certificate)
    stranger = TestCa.root("Stranger Root").sub_ca("Stranger MO")
    foreign = stranger.issue(name(EMAID), ec_key().public_key())
    asked_before = pnc.responder.requests
    async for station in connected(pnc, f"CP-PNC-CHAIN-{version}".replace(".", ""), version):
        accepted = await station.call(authorize(version, certificate=chain))  # type: ignore[attr-defined]
        untrusted = await station.call(  # type: ignore[attr-defined]
            authorize(version, certificate=pem(foreign) + pem(stranger.certificate))
        )
    assert (accepted.id_token_info["status"], accepted.certificate_status) == (
        "Accepted",
        "Accepted",
    )
    assert pnc.responder.requests - asked_before == 1
    assert (untrusted.id_token_info["status"], untrusted.certificate_status) == (
        "Invalid",
        "CertChainError",
    )


async def test_authorize_when_the_ocsp_responder_cannot_be_reached(pnc: Pnc) -> None:
    """No answer from the responder the hash data names: NoCertificateAvailable, and the
    token is not accepted on an unchecked contract."""
    await known_emaid(pnc)
    unreachable = hash_entry(pnc, contract(pnc), url="http://127.0.0.1:9/")
    async for station in connected(pnc, "CP-PNC-NO-OCSP", "2.0.1"):
        answer = await station.call(authorize("2.0.1", hash_data=[unreachable]))  # type: ignore[attr-defined]
    assert (answer.id_token_info["status"], answer.certificate_status) == (
        "Invalid",
        "NoCertificateAvailable",
    )


async def test_authorize_without_iso15118_data_has_no_certificate_status(pnc: Pnc) -> None:
    await known_emaid(pnc)
    async for station in connected(pnc, "CP-PNC-PLAIN", "2.0.1"):
        answer = await station.call(authorize("2.0.1"))  # type: ignore[attr-defined]
    assert answer.id_token_info["status"] == "Accepted"
    assert answer.certificate_status is None


async def test_authorize_with_more_than_four_hash_entries_is_refused(pnc: Pnc) -> None:
    """iso15118CertificateHashData has at most 4 entries (2.0.1 AuthorizeRequest schema):
    the gateway answers OccurrenceConstraintViolation and nobody is asked."""
    await known_emaid(pnc)
    entries = [hash_entry(pnc, contract(pnc)) for _ in range(5)]
    asked_before = pnc.responder.requests
    async for station in connected(pnc, "CP-PNC-FIVE", "2.0.1"):
        with pytest.raises(OCPPError) as refused:
            await station.call(  # type: ignore[attr-defined]
                authorize("2.0.1", hash_data=entries), suppress=False, skip_schema_validation=True
            )
    assert refused.value.code == "OccurrenceConstraintViolation"
    assert pnc.responder.requests == asked_before


async def test_hash_data_that_is_no_hexadecimal_gets_a_clear_answer(pnc: Pnc) -> None:
    """The schemas let any string through as issuerNameHash: such data is answered at once
    (GetCertificateStatus Failed with InvalidHashData, a chain entry Failed, Authorize
    NoCertificateAvailable/Invalid), never left to the decision timeout, nobody asked."""
    await known_emaid(pnc)
    bad = ocsp_data(pnc) | {"issuer_name_hash": "not-hexadecimal"}
    asked_before = pnc.responder.requests
    async for station in connected(pnc, "CP-PNC-NOT-HEX", "2.1"):
        status = await station.call(  # type: ignore[attr-defined]
            ocpp.v21.call.GetCertificateStatus(ocsp_request_data=bad), suppress=False
        )
        chain_entry = {
            "certificate_hash_data": {k: v for k, v in bad.items() if k != "responder_url"},
            "source": "OCSP",
            "urls": [pnc.ocsp_url],
        }
        chain = await station.call(  # type: ignore[attr-defined]
            ocpp.v21.call.GetCertificateChainStatus(certificate_status_requests=[chain_entry]),
            suppress=False,
        )
        authorized = await station.call(authorize("2.1", hash_data=[bad]), suppress=False)  # type: ignore[attr-defined]
    assert (status.status, status.status_info["reason_code"]) == ("Failed", "InvalidHashData")
    assert [item["status"] for item in chain.certificate_status] == ["Failed"]
    assert (authorized.id_token_info["status"], authorized.certificate_status) == (
        "Invalid",
        "NoCertificateAvailable",
    )
    assert pnc.responder.requests == asked_before


async def test_a_lenient_stations_overlong_schema_version_is_forwarded(pnc: Pnc) -> None:
    """A station marked lenient may exceed a field's length (the gateway lets it through,
    logged): its Get15118EVCertificate still reaches the provider and gets its answer."""
    await pnc.csms.identities.save("CP-EV-LENIENT", lenient=True)
    version = "urn:iso:15118:2:2013:MsgDef" + ":vendor-extension" * 3  # 78 > 50 characters
    async for station in connected(pnc, "CP-EV-LENIENT", "2.0.1"):
        answer = await station.call(  # type: ignore[attr-defined]
            ocpp.v201.call.Get15118EVCertificate(
                iso15118_schema_version=version, action="Install", exi_request="AAAA"
            ),
            skip_schema_validation=True,
            suppress=False,
        )
    assert answer.status == "Accepted"
    assert pnc.provider.received[0]["iso15118SchemaVersion"] == version


def base64_hashes(entry: dict[str, str]) -> dict[str, str]:
    return entry | {
        name: base64.b64encode(bytes.fromhex(entry[name])).decode()
        for name in ("issuer_name_hash", "issuer_key_hash")
    }


async def test_base64_hash_data_is_checked_as_well(pnc: Pnc) -> None:
    """A station sending its hashes in base64 (not the hexadecimal OCPP asks for) still
    gets its OCSP answer and its contract checked."""
    await known_emaid(pnc)
    async for station in connected(pnc, "CP-PNC-BASE64", "2.0.1"):
        status = await station.call(  # type: ignore[attr-defined]
            ocpp.v201.call.GetCertificateStatus(ocsp_request_data=base64_hashes(ocsp_data(pnc)))
        )
        entry = base64_hashes(hash_entry(pnc, contract(pnc, revoked=True)))
        authorized = await station.call(authorize("2.0.1", hash_data=[entry]))  # type: ignore[attr-defined]
    assert status.status == "Accepted"
    response = ocsp.load_der_ocsp_response(base64.b64decode(status.ocsp_result))
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert (authorized.id_token_info["status"], authorized.certificate_status) == (
        "Invalid",
        "CertificateRevoked",
    )

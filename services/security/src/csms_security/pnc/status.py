"""What the security service decides for Plug & Charge: certificate status answers.

- GetCertificateStatus (2.0.1 M06, 2.1): the OCSP answer of the responder the
  station names, relayed as ``ocspResult`` (DER, base64).
- GetCertificateChainStatus (2.1 M07): each certificate's status by OCSP or CRL.
- Authorize with ISO 15118 data (2.0.1 C07): ``certificateStatus`` from the OCSP
  status of every certificate in ``iso15118CertificateHashData`` or, for central
  contract validation, from the chain in ``certificate`` (checked against the
  trust store) and its OCSP status.
"""

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID
from pydantic import ValidationError

from csms_ocpp.messages import (
    GetCertificateChainStatusRequest,
    GetCertificateChainStatusResponse,
    GetCertificateStatusRequest,
    GetCertificateStatusResponse,
)
from csms_security.db import ocpp_time
from csms_security.hashdata import CertificateHashData, OcspRequestData, as_hex_hashes, hash_data
from csms_security.pnc.revocation import CertificateStatus, RevocationAnswer, RevocationClient
from csms_security.pnc.trust import ChainError, TrustStore, load_pem_chain

MAX_OCSP_RESULT = {"2.0.1": 5500, "2.1": 18000}  # ocspResult maxLength per version
NOT_HEX = "malformed certificate hash data: the hashes and the serial must be hexadecimal"

HashData = TypeVar("HashData", bound=CertificateHashData)


class AuthorizeCertificateStatus(StrEnum):
    """AuthorizeCertificateStatusEnumType (2.0.1, 2.1)."""

    ACCEPTED = "Accepted"
    SIGNATURE_ERROR = "SignatureError"
    CERTIFICATE_EXPIRED = "CertificateExpired"
    CERTIFICATE_REVOKED = "CertificateRevoked"
    NO_CERTIFICATE_AVAILABLE = "NoCertificateAvailable"
    CERT_CHAIN_ERROR = "CertChainError"
    CONTRACT_CANCELLED = "ContractCancelled"


def _status_info(reason: str, detail: str) -> dict[str, str]:
    return {"reasonCode": reason, "additionalInfo": detail[:512]}


def _read(model: type[HashData], data: Mapping[str, Any]) -> HashData | None:
    """The station's certificate hash data as ``model`` (base64 hashes taken too); None
    when its hashes or serial are no hexadecimal (the OCPP schemas let any string of the
    right length through)."""
    try:
        return model.model_validate(as_hex_hashes(data))
    except ValidationError:
        return None


def _unreadable() -> RevocationAnswer:
    return RevocationAnswer(CertificateStatus.FAILED, datetime.now(UTC), NOT_HEX)


async def certificate_status(
    revocation: RevocationClient, payload: GetCertificateStatusRequest, version: str
) -> GetCertificateStatusResponse:
    """The GetCertificateStatusResponse for ``payload`` (its ocspRequestData)."""
    request = _read(OcspRequestData, payload["ocspRequestData"])
    if request is None:
        return {"status": "Failed", "statusInfo": _status_info("InvalidHashData", NOT_HEX)}
    answer = await revocation.check_ocsp(request)
    if answer.response_der is None or answer.status is CertificateStatus.FAILED:
        return {"status": "Failed", "statusInfo": _status_info("OCSPFailed", answer.detail)}
    result = base64.b64encode(answer.response_der).decode()
    if len(result) > MAX_OCSP_RESULT.get(version, 5500):
        return {"status": "Failed", "statusInfo": _status_info("TooLarge", "OCSP answer too big")}
    return {"status": "Accepted", "ocspResult": result}


async def chain_status(
    revocation: RevocationClient, payload: GetCertificateChainStatusRequest
) -> GetCertificateChainStatusResponse:
    """The 2.1 GetCertificateChainStatusResponse: one entry per certificate asked about."""
    statuses = []
    for entry in payload["certificateStatusRequests"]:
        certificate = _read(CertificateHashData, entry["certificateHashData"])
        answer = (
            _unreadable()
            if certificate is None
            else await _first_answer(revocation, certificate, entry["source"], entry["urls"])
        )
        statuses.append(
            {
                "certificateHashData": entry["certificateHashData"],
                "source": entry["source"],
                "status": answer.status.value,
                "nextUpdate": ocpp_time(answer.next_update),
            }
        )
    return {"certificateStatus": statuses}


async def _first_answer(
    revocation: RevocationClient, certificate: CertificateHashData, source: str, urls: list[str]
) -> RevocationAnswer:
    """The first usable answer among ``urls`` (the station lists alternatives)."""
    answer: RevocationAnswer | None = None
    for url in urls:
        if source == "OCSP":
            request = OcspRequestData(**certificate.model_dump(), responder_url=url)
            answer = await revocation.check_ocsp(request)
        else:
            answer = await revocation.check_crl(certificate, url)
        if answer.status is not CertificateStatus.FAILED:
            return answer
    assert answer is not None  # noqa: S101 - the schema requires at least one url
    return answer


async def authorize_status(
    revocation: RevocationClient, trust: TrustStore, payload: Mapping[str, Any]
) -> AuthorizeCertificateStatus | None:
    """``certificateStatus`` for an Authorize, or None when it carries no ISO 15118 data."""
    if payload.get("iso15118CertificateHashData"):
        requests = [
            _read(OcspRequestData, entry) for entry in payload["iso15118CertificateHashData"]
        ]
        return _worst(
            [
                _unreadable() if request is None else await revocation.check_ocsp(request)
                for request in requests
            ]
        )
    if payload.get("certificate"):
        return await _contract_chain_status(revocation, trust, payload["certificate"])
    return None


async def _contract_chain_status(
    revocation: RevocationClient, trust: TrustStore, chain_pem: str
) -> AuthorizeCertificateStatus:
    """Central contract validation (2.0.1 C07.FR.06): the chain, then OCSP of each link."""
    try:
        path = trust.verify_chain(load_pem_chain(chain_pem))
    except ChainError as exc:
        if exc.expired:
            return AuthorizeCertificateStatus.CERTIFICATE_EXPIRED
        return AuthorizeCertificateStatus.CERT_CHAIN_ERROR
    requests = _ocsp_requests(path, trust)
    return _worst([await revocation.check_ocsp(request) for request in requests])


def _ocsp_requests(path: list[x509.Certificate], trust: TrustStore) -> list[OcspRequestData]:
    """An OCSP request for each certificate of ``path`` that names a responder (AIA)."""
    requests = []
    issuers = [*path[1:], *trust.certificates]
    for certificate in path:
        url = _ocsp_url(certificate)
        issuer = next((c for c in issuers if c.subject == certificate.issuer), None)
        if url is None or issuer is None:
            continue
        data = hash_data(certificate, issuer)
        requests.append(OcspRequestData(**data.model_dump(), responder_url=url))
    return requests


def _ocsp_url(certificate: x509.Certificate) -> str | None:
    try:
        access = certificate.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess
        ).value
    except x509.ExtensionNotFound:
        return None
    for description in access:
        if description.access_method == AuthorityInformationAccessOID.OCSP:
            return str(description.access_location.value)
    return None


def _worst(answers: Sequence[RevocationAnswer]) -> AuthorizeCertificateStatus:
    """Revoked beats unknown beats unreachable; all good (or nothing to ask) is Accepted."""
    statuses = {answer.status for answer in answers}
    if CertificateStatus.REVOKED in statuses:
        return AuthorizeCertificateStatus.CERTIFICATE_REVOKED
    if CertificateStatus.UNKNOWN in statuses:
        return AuthorizeCertificateStatus.CERT_CHAIN_ERROR
    if CertificateStatus.FAILED in statuses:
        # "cannot be retrieved from secondary actor within the specified timeout"
        return AuthorizeCertificateStatus.NO_CERTIFICATE_AVAILABLE
    return AuthorizeCertificateStatus.ACCEPTED

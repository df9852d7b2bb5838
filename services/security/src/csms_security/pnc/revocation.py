"""Revocation status of a certificate named by its hash data: OCSP (RFC 6960) and CRLs.

``RevocationClient.check_ocsp`` asks the responder the station named (GetCertificateStatus,
Authorize) and returns the DER answer to relay (``ocspResult`` is that DER, base64)
together with what it says. An answer whose signer the trust store knows is
verified; with an empty trust store answers are taken as they come.
Answers are cached until their nextUpdate, so a burst of Authorize calls for one
contract asks the responder once.
"""

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from csms_security.hashdata import CertificateHashData, OcspRequestData
from csms_security.pnc.addresses import AddressRefused, check_url
from csms_security.pnc.trust import TrustStore, verify_signature

logger = logging.getLogger(__name__)

CACHE_SIZE = 10_000
CRL_CACHE_SIZE = 64
MAX_RESPONSE_BYTES = 64 * 1024
MAX_CRL_BYTES = 16 * 1024 * 1024


class CertificateStatus(StrEnum):
    """OCPP 2.1 CertificateStatusEnumType."""

    GOOD = "Good"
    REVOKED = "Revoked"
    UNKNOWN = "Unknown"
    FAILED = "Failed"


@dataclass(frozen=True)
class RevocationAnswer:
    status: CertificateStatus
    next_update: datetime
    detail: str = ""
    response_der: bytes | None = None  # the OCSP response as received (to relay)
    verified: bool = False  # its signature checked against the trust store


_STATUS = {
    ocsp.OCSPCertStatus.GOOD: CertificateStatus.GOOD,
    ocsp.OCSPCertStatus.REVOKED: CertificateStatus.REVOKED,
    ocsp.OCSPCertStatus.UNKNOWN: CertificateStatus.UNKNOWN,
}


def _failed(detail: str, response_der: bytes | None = None) -> RevocationAnswer:
    return RevocationAnswer(
        CertificateStatus.FAILED, datetime.now(UTC), detail, response_der=response_der
    )


class RevocationClient:
    """Asks OCSP responders and reads CRLs (2.1 GetCertificateChainStatus names either)."""

    def __init__(
        self,
        trust: TrustStore,
        timeout_s: float,
        client: httpx.AsyncClient | None = None,
        *,
        allow_private: bool = False,
    ) -> None:
        self._trust = trust
        self._allow_private = allow_private
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._cache: OrderedDict[tuple[str, ...], RevocationAnswer] = OrderedDict()
        self._crls: OrderedDict[str, x509.CertificateRevocationList] = OrderedDict()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check_ocsp(
        self, request: OcspRequestData, url: str | None = None
    ) -> RevocationAnswer:
        """The status of the certificate ``request`` names, from ``url`` or its responderURL."""
        url = url or request.responder_url
        key = (url, request.hash_algorithm, request.issuer_name_hash.lower(),
               request.issuer_key_hash.lower(), str(request.serial))  # fmt: skip
        cached = self._cache.get(key)
        if cached is not None and cached.next_update > datetime.now(UTC):
            self._cache.move_to_end(key)
            return cached
        answer = await self._ask(request, url)
        if answer.status is not CertificateStatus.FAILED:
            self._cache[key] = answer
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return answer

    async def _ask(self, request: CertificateHashData, url: str) -> RevocationAnswer:
        try:
            body = (
                ocsp.OCSPRequestBuilder()
                .add_certificate_by_hash(
                    bytes.fromhex(request.issuer_name_hash),
                    bytes.fromhex(request.issuer_key_hash),
                    request.serial,
                    request.hash_algorithm.hash(),
                )
                .build()
                .public_bytes(serialization.Encoding.DER)
            )
        except ValueError as exc:  # hashes of the wrong length for the algorithm
            return _failed(f"cannot form an OCSP request: {exc}")
        try:
            await check_url(url, allow_private=self._allow_private)
        except AddressRefused as exc:
            logger.warning("OCSP responder refused: %s", exc)
            return _failed(f"responder not allowed: {exc}")
        try:
            response = await self._client.post(
                url, content=body, headers={"Content-Type": "application/ocsp-request"}
            )
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("OCSP responder %s unreachable: %r", url, exc)
            return _failed(f"OCSP responder unreachable: {exc!r}")
        if response.status_code != 200 or len(response.content) > MAX_RESPONSE_BYTES:
            return _failed(f"OCSP responder answered HTTP {response.status_code}")
        return self._read(request, response.content)

    def _read(self, request: CertificateHashData, der: bytes) -> RevocationAnswer:
        try:
            response = ocsp.load_der_ocsp_response(der)
        except ValueError as exc:
            return _failed(f"not an OCSP response: {exc}")
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return _failed(f"OCSP responder says {response.response_status.name}", der)
        single = next((r for r in response.responses if _names(r, request)), None)
        if single is None:
            return _failed("the OCSP response is about another certificate", der)
        verified = self._verified(request, response)
        if verified is False:
            return _failed("the OCSP response's signature does not verify", der)
        next_update = single.next_update_utc or datetime.now(UTC) + timedelta(minutes=5)
        return RevocationAnswer(
            _STATUS[single.certificate_status],
            next_update,
            response_der=der,
            verified=verified is True,
        )

    def _verified(self, request: CertificateHashData, response: ocsp.OCSPResponse) -> bool | None:
        """True verified, False forged or by an untrusted signer, None nothing to check with."""
        if self._trust.empty:
            return None
        issuer = self._trust.issuer_of(request)
        if issuer is None:
            return False
        signer = _responder(issuer, response)
        if signer is None:
            return False
        return verify_signature(
            signer.public_key(),
            response.signature,
            response.tbs_response_bytes,
            response.signature_hash_algorithm,
        )

    async def check_crl(self, certificate: CertificateHashData, url: str) -> RevocationAnswer:
        """The status of ``certificate`` in the CRL at ``url`` (its issuer's, RFC 5280 §5)."""
        crl = self._crls.get(url)
        if crl is None or _stale(crl):
            loaded = await self._load_crl(url)
            if isinstance(loaded, RevocationAnswer):
                return loaded
            crl = self._crls[url] = loaded
            while len(self._crls) > CRL_CACHE_SIZE:
                self._crls.popitem(last=False)
        return self._crl_status(certificate, crl)

    async def _load_crl(self, url: str) -> "x509.CertificateRevocationList | RevocationAnswer":
        try:
            await check_url(url, allow_private=self._allow_private)
        except AddressRefused as exc:
            logger.warning("CRL location refused: %s", exc)
            return _failed(f"CRL location not allowed: {exc}")
        try:
            response = await self._client.get(url)
        except (httpx.HTTPError, ValueError) as exc:
            return _failed(f"CRL unreachable: {exc!r}")
        if response.status_code != 200 or len(response.content) > MAX_CRL_BYTES:
            return _failed(f"CRL download answered HTTP {response.status_code}")
        body = response.content
        try:
            if body.lstrip().startswith(b"-----BEGIN"):
                return x509.load_pem_x509_crl(body)
            return x509.load_der_x509_crl(body)
        except ValueError as exc:
            return _failed(f"not a CRL: {exc}")

    def _crl_status(
        self, certificate: CertificateHashData, crl: x509.CertificateRevocationList
    ) -> RevocationAnswer:
        digest = hashes.Hash(certificate.hash_algorithm.hash())
        digest.update(crl.issuer.public_bytes())
        if digest.finalize().hex() != certificate.issuer_name_hash.lower():
            return _failed("the CRL is of another issuer than the certificate's")
        verified = None
        if not self._trust.empty:
            issuer = self._trust.issuer_of(certificate)
            key = issuer.public_key() if issuer is not None else None
            verified = isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) and (
                crl.is_signature_valid(key)
            )
            if not verified:
                return _failed("the CRL's signature does not verify against a trusted CA")
        revoked = crl.get_revoked_certificate_by_serial_number(certificate.serial)
        status = CertificateStatus.REVOKED if revoked is not None else CertificateStatus.GOOD
        next_update = crl.next_update_utc or datetime.now(UTC) + timedelta(hours=1)
        return RevocationAnswer(status, next_update, verified=verified is True)


def _names(single: ocsp.OCSPSingleResponse, request: CertificateHashData) -> bool:
    return (
        single.serial_number == request.serial
        and single.issuer_name_hash.hex() == request.issuer_name_hash.lower()
        and single.issuer_key_hash.hex() == request.issuer_key_hash.lower()
    )


def _responder(issuer: x509.Certificate, response: ocsp.OCSPResponse) -> x509.Certificate | None:
    """The issuer itself, or a certificate it delegated OCSP signing to (RFC 6960 §4.2.2.2)."""
    if _is_responder(issuer, response):
        return issuer
    for delegate in response.certificates:
        if not _is_responder(delegate, response) or delegate.issuer != issuer.subject:
            continue
        try:
            delegate.verify_directly_issued_by(issuer)
            usages = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in usages:
            return delegate
    return None


def _is_responder(certificate: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    if response.responder_name is not None:
        return certificate.subject == response.responder_name
    key_id = x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest
    return response.responder_key_hash == key_id


def _stale(crl: x509.CertificateRevocationList) -> bool:
    return crl.next_update_utc is None or crl.next_update_utc <= datetime.now(UTC)

"""Who signs a checked CSR: the local CA, or an external CA over EST (RFC 7030).

``CertificateSigner`` is the pluggable interface. Whatever signs, the result is
checked before it goes to a station: the leaf must carry the CSR's public key and
subject, and the chain is ordered leaf first, each certificate followed by its
issuer (OCPP 2.0.1 CertificateSignedRequest.certificateChain).
"""

import base64
import binascii
import ssl
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from csms_security.authority.ca import CertificateAuthority, CertificateUse, pem


class SigningFailed(Exception):
    """The signer did not sign (it refused, failed, or returned something unusable)."""


class SigningPending(Exception):
    """The signer accepted the request for later (EST 202): ask again after ``retry_after_s``."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"signing pending; retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class SignedCertificate:
    """A leaf and the certificates that follow it to (not including) the root."""

    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @property
    def chain_pem(self) -> str:
        return "".join(pem(certificate) for certificate in (self.leaf, *self.chain))


class CertificateSigner(Protocol):
    """Signs station certificates."""

    @property
    def name(self) -> str:
        """What the certificates it signs record as their issuer kind (``local``, ``est``)."""
        ...

    async def sign(
        self, csr: x509.CertificateSigningRequest, use: CertificateUse
    ) -> SignedCertificate:
        """The certificate for ``csr``; SigningFailed or SigningPending otherwise."""
        ...

    async def ca_certificates(self) -> list[x509.Certificate]:
        """The CA certificates a station certificate chains to (for operators to download)."""
        ...


class LocalSigner:
    """Signs with the CA held by this process."""

    name = "local"

    def __init__(self, authority: CertificateAuthority, validity: timedelta) -> None:
        self._authority = authority
        self._validity = validity

    async def sign(
        self, csr: x509.CertificateSigningRequest, use: CertificateUse
    ) -> SignedCertificate:
        leaf = self._authority.sign(csr, use, self._validity)
        return checked(csr, SignedCertificate(leaf, self._authority.issuer_chain()))

    async def ca_certificates(self) -> list[x509.Certificate]:
        return [self._authority.certificate, *self._authority.chain]


class EstSigner:
    """An external CA speaking EST (RFC 7030 §4.2 simpleenroll, §4.1 cacerts).

    ``base_url`` is the EST path prefix, e.g. ``https://ca.example/.well-known/est`` (or
    ``.../est/<label>``). HTTP Basic credentials are optional (the server may
    authenticate us by TLS client certificate instead).
    """

    name = "est"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        auth: tuple[str, str] | None = None,
        ca_file: Path | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self._client = client or httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", timeout=timeout_s, auth=auth, verify=verify
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def sign(
        self, csr: x509.CertificateSigningRequest, use: CertificateUse
    ) -> SignedCertificate:
        body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
        try:
            response = await self._client.post(
                "simpleenroll",
                content=body,
                headers={
                    "Content-Type": "application/pkcs10",
                    "Content-Transfer-Encoding": "base64",
                },
            )
        except httpx.HTTPError as exc:
            raise SigningFailed(f"EST server unreachable: {exc!r}") from exc
        if response.status_code == 202:  # RFC 7030 §4.2.3: accepted, not yet issued
            raise SigningPending(_retry_after(response))
        if response.status_code != 200:
            raise SigningFailed(
                f"EST simpleenroll answered {response.status_code}: {_text(response)}"
            )
        certificates = _pkcs7_certificates(response.content)
        return checked(csr, order_chain(csr, certificates))

    async def ca_certificates(self) -> list[x509.Certificate]:
        try:
            response = await self._client.get("cacerts")
        except httpx.HTTPError as exc:
            raise SigningFailed(f"EST server unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise SigningFailed(f"EST cacerts answered {response.status_code}: {_text(response)}")
        return _pkcs7_certificates(response.content)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "60")))
    except ValueError:
        return 60.0


def _text(response: httpx.Response) -> str:
    return response.text[:200].strip()


def _pkcs7_certificates(body: bytes) -> list[x509.Certificate]:
    """An EST answer: a base64 PKCS#7 certs-only message (RFC 7030 §4.1.3, §4.2.3)."""
    try:
        return pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
    except (ValueError, binascii.Error) as exc:
        raise SigningFailed(f"EST answer is no PKCS#7 certificate set: {exc}") from exc


def order_chain(
    csr: x509.CertificateSigningRequest, certificates: list[x509.Certificate]
) -> SignedCertificate:
    """The leaf carrying the CSR's key, then each issuer in turn (a set has no order)."""
    leaf = next((c for c in certificates if c.public_key() == csr.public_key()), None)
    if leaf is None:
        raise SigningFailed("the signer returned no certificate for the CSR's key")
    by_subject = {c.subject: c for c in certificates if c is not leaf}
    chain: list[x509.Certificate] = []
    current = leaf
    while current.issuer != current.subject and (issuer := by_subject.pop(current.issuer, None)):
        if issuer.subject != issuer.issuer:  # roots stay out: the station trusts them already
            chain.append(issuer)
        current = issuer
    return SignedCertificate(leaf, tuple(chain))


def checked(csr: x509.CertificateSigningRequest, signed: SignedCertificate) -> SignedCertificate:
    """Refuse a certificate that is not for this CSR (a signer's bug or a mix-up)."""
    if signed.leaf.public_key() != csr.public_key():
        raise SigningFailed("the signed certificate carries another public key than the CSR")
    # An external CA may add to the subject (C=, DC=); the commonName must stay.
    names = [_common_names(certificate.subject) for certificate in (signed.leaf, csr)]
    if names[0] != names[1]:
        raise SigningFailed(f"the signed certificate is for CN {names[0]}, not CN {names[1]}")
    return signed


def _common_names(subject: x509.Name) -> list[str]:
    return [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]

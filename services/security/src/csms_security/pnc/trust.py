"""The Plug & Charge trust anchors: V2G and MO roots and their sub-CAs (``pnc_trust_file``).

With them the CSMS checks what it decides on itself: the signature of an OCSP
answer and the chain of a contract certificate (OCPP 2.0.1 C07, central
contract validation). Without them OCSP answers are relayed and used unverified,
which the service logs at start.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from csms_security.hashdata import CertificateHashData, hash_data

MAX_CHAIN = 5  # a contract chain: leaf, up to two sub-CAs, root (ISO 15118-2 §7.9.2)


class ChainError(Exception):
    """A certificate chain that does not verify; ``expired`` says if that is all it is."""

    def __init__(self, detail: str, *, expired: bool = False) -> None:
        super().__init__(detail)
        self.expired = expired


@dataclass(frozen=True)
class TrustStore:
    certificates: tuple[x509.Certificate, ...] = field(default=())

    @classmethod
    def from_file(cls, path: Path | None) -> "TrustStore":
        if path is None:
            return cls()
        return cls(tuple(x509.load_pem_x509_certificates(path.read_bytes())))

    @property
    def empty(self) -> bool:
        return not self.certificates

    def issuer_of(self, certificate_id: CertificateHashData) -> x509.Certificate | None:
        """The trusted CA whose name and key hash to ``certificate_id``'s issuer hashes."""
        for candidate in self.certificates:
            # The key hash of anything ``candidate`` issued is that of its own key.
            own = hash_data(candidate, candidate, certificate_id.hash_algorithm)
            if (
                _subject_hash(candidate, certificate_id) == certificate_id.issuer_name_hash.lower()
                and own.issuer_key_hash == certificate_id.issuer_key_hash.lower()
            ):
                return candidate
        return None

    def verify_chain(
        self, chain: list[x509.Certificate], now: datetime | None = None
    ) -> list[x509.Certificate]:
        """The path leaf → ... → trusted anchor (without the anchor); ChainError otherwise."""
        now = now or datetime.now(UTC)
        path: list[x509.Certificate] = []
        current, others = chain[0], list(chain[1:])
        while len(path) < MAX_CHAIN:
            _check_validity(current, now)
            path.append(current)
            anchor = _issuer_among(current, list(self.certificates))
            if anchor is not None:
                _check_validity(anchor, now)
                return path
            issuer = _issuer_among(current, others)
            if issuer is None:
                raise ChainError(f"no trusted issuer for {current.subject.rfc4514_string()}")
            others.remove(issuer)
            current = issuer
        raise ChainError("the certificate chain is too long")


def _subject_hash(candidate: x509.Certificate, certificate_id: CertificateHashData) -> str:
    digest = hashes.Hash(certificate_id.hash_algorithm.hash())
    digest.update(candidate.subject.public_bytes())
    return digest.finalize().hex()


def _issuer_among(
    certificate: x509.Certificate, candidates: list[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return candidate
    return None


def _check_validity(certificate: x509.Certificate, now: datetime) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise ChainError(
            f"{certificate.subject.rfc4514_string()} is not valid now "
            f"({certificate.not_valid_before_utc} to {certificate.not_valid_after_utc})",
            expired=now > certificate.not_valid_after_utc,
        )


def verify_signature(
    public_key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> bool:
    """Whether ``signature`` over ``data`` verifies with an RSA or EC ``public_key``."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def load_pem_chain(text: str) -> list[x509.Certificate]:
    """Certificates of a PEM bundle, leaf first; ChainError if there are none or it is garbage."""
    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        raise ChainError(f"not a PEM certificate chain: {exc}") from exc
    return certificates

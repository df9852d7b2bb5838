"""The station certificate authority: the operator's CA from files, or one created on first start.

The CA key lives in this process only: it is read from a file (or written to one,
mode 0600, when it is created), never stored in the database and never logged.
Replicas that share ``ca_dir`` agree on one created CA: the first to link its key
file in place wins and the others load that one.
"""

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from uuid import uuid4

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

CERT_FILE = "ca.pem"
KEY_FILE = "ca-key.pem"
# Tolerate station clocks a little behind ours.
BACKDATE = timedelta(minutes=5)


class CertificateUse(StrEnum):
    """What a station certificate is for (OCPP 2.x CertificateSigningUseEnumType)."""

    CHARGING_STATION = "ChargingStationCertificate"  # TLS client of the CSMS (profile 3)
    V2G = "V2GCertificate"  # ISO 15118-2 SECC (TLS server of the EV)
    V2G20 = "V2G20Certificate"  # ISO 15118-20 SECC (OCPP 2.1)
    COMBINED = "Combined"  # no certificateType: both (OCPP 2.0.1 A02/A03)


CaKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class AuthorityError(RuntimeError):
    """The CA cannot be loaded or created (its files are missing, unreadable or disagree)."""


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate, its key, and the issuers above it (sent along to stations)."""

    certificate: x509.Certificate
    key: CaKey
    chain: tuple[x509.Certificate, ...] = ()

    def __repr__(self) -> str:  # never the key
        return f"CertificateAuthority({self.certificate.subject.rfc4514_string()})"

    @property
    def organization(self) -> str | None:
        return _attribute(self.certificate.subject, NameOID.ORGANIZATION_NAME)

    def certificates_pem(self) -> str:
        """The CA certificate and its issuers, PEM: the trust anchor of security profile 3."""
        return "".join(pem(certificate) for certificate in (self.certificate, *self.chain))

    def issuer_chain(self) -> tuple[x509.Certificate, ...]:
        """What follows a leaf in CertificateSigned: the CA and its issuers, roots left out
        (a station trusts its root already; 2.0.1 A02.FR.xx: leaf first, then sub-CAs)."""
        return tuple(
            certificate
            for certificate in (self.certificate, *self.chain)
            if not _self_signed(certificate)
        )

    def sign(
        self,
        csr: x509.CertificateSigningRequest,
        use: CertificateUse,
        validity: timedelta,
        now: datetime | None = None,
    ) -> x509.Certificate:
        """A station certificate for the (already checked) ``csr``."""
        now = now or datetime.now(UTC)
        not_after = min(now + validity, self.certificate.not_valid_after_utc)
        public_key = csr.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(public_key), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        usages = _extended_usages(use)
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        return builder.sign(self.key, _signature_hash(self.key))


def _key_usage(public_key: object) -> x509.KeyUsage:
    rsa_key = isinstance(public_key, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=rsa_key,
        data_encipherment=False,
        key_agreement=not rsa_key,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _extended_usages(use: CertificateUse) -> list[x509.ObjectIdentifier]:
    # The station is the TLS client of the CSMS and the TLS server of the EV (ISO 15118).
    if use is CertificateUse.CHARGING_STATION:
        return [ExtendedKeyUsageOID.CLIENT_AUTH]
    if use is CertificateUse.COMBINED:
        return [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    return [ExtendedKeyUsageOID.SERVER_AUTH]


def _signature_hash(key: CaKey) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _self_signed(certificate: x509.Certificate) -> bool:
    return certificate.subject == certificate.issuer


# -- loading and creating ---------------------------------------------------------------------


def load_authority(cert_file: Path, key_file: Path, password: bytes | None) -> CertificateAuthority:
    """The operator's CA: its certificate and issuers in ``cert_file``, its key in ``key_file``."""
    try:
        certificates = x509.load_pem_x509_certificates(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password)
    except (OSError, ValueError, TypeError) as exc:
        # ``exc`` names what failed (a path, "bad decrypt"), never key material.
        raise AuthorityError(f"cannot load the CA from {cert_file} and {key_file}: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise AuthorityError("the CA key must be an RSA or EC key")
    authority = CertificateAuthority(certificates[0], key, tuple(certificates[1:]))
    _check(authority)
    return authority


def _check(authority: CertificateAuthority) -> None:
    certificate = authority.certificate
    if certificate.public_key() != authority.key.public_key():
        raise AuthorityError("the CA key does not belong to the CA certificate")
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise AuthorityError("the CA certificate is not a CA (basicConstraints CA:TRUE missing)")
    if certificate.not_valid_after_utc <= datetime.now(UTC):
        raise AuthorityError(f"the CA certificate expired on {certificate.not_valid_after_utc}")


def load_or_create_authority(
    ca_dir: Path, organization: str, validity: timedelta
) -> CertificateAuthority:
    """The CA kept in ``ca_dir``, created there on first start."""
    cert_file, key_file = ca_dir / CERT_FILE, ca_dir / KEY_FILE
    if not key_file.exists():
        _create(ca_dir, organization, validity)
    _wait_for(cert_file)
    return load_authority(cert_file, key_file, None)


def _create(ca_dir: Path, organization: str, validity: timedelta) -> None:
    ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _self_signed_ca(key, organization, validity)
    suffix = f".{uuid4().hex}.tmp"
    key_tmp, cert_tmp = ca_dir / (KEY_FILE + suffix), ca_dir / (CERT_FILE + suffix)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_tmp, key_bytes)
    cert_tmp.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    try:
        os.link(key_tmp, ca_dir / KEY_FILE)  # atomic, and fails if another replica won
    except FileExistsError:
        cert_tmp.unlink()
        return
    finally:
        key_tmp.unlink()
    cert_tmp.replace(ca_dir / CERT_FILE)
    logger.warning(
        "created a station CA in %s (%s); keep %s secret and back it up",
        ca_dir,
        certificate.subject.rfc4514_string(),
        KEY_FILE,
    )


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _self_signed_ca(
    key: ec.EllipticCurvePrivateKey, organization: str, validity: timedelta
) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} station CA"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _wait_for(cert_file: Path, timeout_s: float = 10.0) -> None:
    """Another replica linked its key first: its certificate follows within moments."""
    deadline = time.monotonic() + timeout_s
    while not cert_file.exists():
        if time.monotonic() > deadline:
            raise AuthorityError(f"{cert_file} is missing next to its key")
        time.sleep(0.05)

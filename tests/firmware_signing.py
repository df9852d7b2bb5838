"""A firmware signer of the tests' own (a self-signed RSA certificate), and the check a
station makes before it installs a signed image (RSA-PSS with SHA-256 over the file)."""

import base64
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate_pem: str

    def sign(self, image: bytes) -> str:
        """The image's signature, base64, as OCPP carries it."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            raw = self.key.sign(image, PSS, hashes.SHA256())
        else:
            raw = self.key.sign(image, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(raw).decode()


def _signer(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Signer:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACME firmware signing")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return Signer(key, certificate.public_bytes(serialization.Encoding.PEM).decode())


@functools.cache
def rsa_signer() -> Signer:
    return _signer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@functools.cache
def ec_signer() -> Signer:
    return _signer(ec.generate_private_key(ec.SECP256R1()))


def signature_holds(image: bytes, signature: str, certificate_pem: str) -> bool:
    """What a station checks: the signature over the whole file, by the certificate's key."""
    key = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    raw = base64.b64decode(signature)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, image, PSS, hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(raw, image, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True

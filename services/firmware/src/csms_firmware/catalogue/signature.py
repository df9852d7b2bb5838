"""A signed image's signature and signing certificate, checked on upload.

The station verifies the signature before it installs (1.6 security whitepaper
SignedUpdateFirmware, 2.0.1 L01): an image whose signature cannot hold would fail on every
station of a campaign with InvalidSignature. So the catalogue refuses, with a clear
problem, a certificate that is no PEM X.509 certificate, a signature that is no base64,
and an RSA signature that does not verify over the image (RSA-PSS with SHA-256, as the
whitepaper names; PKCS#1 v1.5 with SHA-256 is accepted too, as some vendors sign so).
An EC key's signature is checked as ECDSA with SHA-256 where it is one; the whitepaper's
other scheme (ECSchnorr) has no verifier here, so an EC signature that is not ECDSA is
stored as given and left to the station.
"""

import base64
import binascii
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from csms_api.problems import Problem


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """What the upload's check found: ``verified`` False means left to the station."""

    verified: bool
    scheme: str


def check_signature(signature: str, certificate_pem: str, sha256_hex: str) -> SignatureCheck:
    """Check ``signature`` (base64) over the image whose SHA-256 is ``sha256_hex`` with the
    key of ``certificate_pem``; a Problem (422) if it cannot be the image's signature."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError as exc:
        raise Problem(
            422,
            f"signing_certificate is no PEM X.509 certificate: {exc}",
            kind="invalid-signing-certificate",
        ) from exc
    try:
        raw = base64.b64decode(signature, validate=True)
    except binascii.Error as exc:
        raise Problem(422, "signature is not base64", kind="invalid-signature") from exc
    digest = bytes.fromhex(sha256_hex)
    prehashed = utils.Prehashed(hashes.SHA256())
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        schemes = {
            "RSA-PSS/SHA-256": padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO
            ),
            "RSA-PKCS1v1.5/SHA-256": padding.PKCS1v15(),
        }
        for name, scheme in schemes.items():
            try:
                key.verify(raw, digest, scheme, prehashed)
            except InvalidSignature:
                continue
            return SignatureCheck(verified=True, scheme=name)
        raise Problem(
            422,
            "the signature does not verify over this image with the signing certificate's "
            "RSA key (RSA-PSS or PKCS#1 v1.5, SHA-256): stations would refuse it; nothing "
            "was stored",
            kind="invalid-signature",
        )
    if isinstance(key, ec.EllipticCurvePublicKey):
        try:
            key.verify(raw, digest, ec.ECDSA(prehashed))
        except InvalidSignature:
            return SignatureCheck(verified=False, scheme="EC (not ECDSA: left to the station)")
        return SignatureCheck(verified=True, scheme="ECDSA/SHA-256")
    return SignatureCheck(verified=False, scheme=f"{type(key).__name__}: left to the station")

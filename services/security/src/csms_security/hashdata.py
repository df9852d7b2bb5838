"""OCPP's name for a certificate: CertificateHashDataType (1.6 whitepaper, 2.0.1, 2.1).

The hashes are those of an OCSP CertID (RFC 6960 §4.1.1): the issuer's DER-encoded
name and the issuer's public key bits, hex encoded; the serial number is hex
without ``0x`` and without leading zeroes (1.6 whitepaper edition 3).
"""

import base64
import binascii
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from pydantic import BaseModel, ConfigDict, Field


class HashAlgorithm(StrEnum):
    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"

    def hash(self) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
        if self is HashAlgorithm.SHA384:
            return hashes.SHA384()
        if self is HashAlgorithm.SHA512:
            return hashes.SHA512()
        return hashes.SHA256()


class CertificateHashData(BaseModel):
    """One certificate as OCPP names it (field names as on the wire)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    hash_algorithm: HashAlgorithm = Field(alias="hashAlgorithm", examples=["SHA256"])
    issuer_name_hash: str = Field(alias="issuerNameHash", max_length=128, pattern="^[0-9A-Fa-f]+$")
    issuer_key_hash: str = Field(alias="issuerKeyHash", max_length=128, pattern="^[0-9A-Fa-f]+$")
    serial_number: str = Field(alias="serialNumber", max_length=40, pattern="^[0-9A-Fa-f]+$")

    def wire(self) -> dict[str, str]:
        """As an OCPP CertificateHashDataType object."""
        return self.model_dump(by_alias=True, mode="json")

    @property
    def serial(self) -> int:
        return int(self.serial_number, 16)

    def same_certificate(self, other: "CertificateHashData") -> bool:
        """Equal hashes and serial, whatever the letter case (a station may use either)."""
        return (
            self.hash_algorithm is other.hash_algorithm
            and self.issuer_name_hash.lower() == other.issuer_name_hash.lower()
            and self.issuer_key_hash.lower() == other.issuer_key_hash.lower()
            and self.serial == other.serial
        )


class ReportedHashData(CertificateHashData):
    """A certificate as a station reports it (GetInstalledCertificateIds), kept as sent: a
    DeleteCertificate then names it the station's way, even where that is not the
    hexadecimal OCPP asks for (some stations and tools send base64 hashes)."""

    issuer_name_hash: str = Field(alias="issuerNameHash", max_length=128)
    issuer_key_hash: str = Field(alias="issuerKeyHash", max_length=128)
    serial_number: str = Field(alias="serialNumber", max_length=40)

    @property
    def serial_key(self) -> str:
        """The serial for comparing: hexadecimal without leading zeroes, else as sent."""
        try:
            return serial_hex(int(self.serial_number, 16))
        except ValueError:
            return self.serial_number


class OcspRequestData(CertificateHashData):
    """OCSPRequestDataType: a certificate and the OCSP responder to ask about it."""

    responder_url: str = Field(alias="responderURL", max_length=2000)


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def hash_data(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    algorithm: HashAlgorithm = HashAlgorithm.SHA256,
) -> CertificateHashData:
    """The hash data of ``certificate`` issued by ``issuer`` (a root is its own issuer)."""
    # The OCSP request builder computes exactly the CertID hashes OCPP uses.
    request = (
        ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, algorithm.hash()).build()
    )
    return CertificateHashData(
        hash_algorithm=algorithm,
        issuer_name_hash=request.issuer_name_hash.hex(),
        issuer_key_hash=request.issuer_key_hash.hex(),
        serial_number=serial_hex(certificate.serial_number),
    )


def as_hex_hashes(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with base64 issuer hashes turned into the hexadecimal OCPP asks for (some
    stations and tools send base64). A hash is taken as base64 only if it is no hexadecimal
    of the algorithm's digest size and decodes to exactly that size, so the two readings
    never collide; anything else is left for validation to refuse."""
    try:
        size = HashAlgorithm(str(data.get("hashAlgorithm"))).hash().digest_size
    except ValueError:
        return dict(data)
    converted = dict(data)
    for name in ("issuerNameHash", "issuerKeyHash"):
        value = data.get(name)
        if not isinstance(value, str) or _is_hex(value, size):
            continue
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == size:
            converted[name] = raw.hex()
    return converted


def _is_hex(value: str, size: int) -> bool:
    try:
        return len(bytes.fromhex(value)) == size
    except ValueError:
        return False

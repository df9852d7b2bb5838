"""Checking a station's certificate signing request before anything signs it.

OCPP 2.0.1 Part 2 A02/A03 and the 1.6 security whitepaper: the CSR is PKCS#10
(RFC 2986), PEM encoded. We accept it only if it parses, its signature verifies
(the station holds the key), its subject is the station's (commonName = the
station identity for a certificate that authenticates it to the CSMS,
organizationName = the configured organisation, which is also the CA's), and its
key is strong enough: RSA of 2048 bits or more, or EC of 256 bits or more (V2G
certificates are EC only, ISO 15118-2 uses secp256r1).
"""

import base64
import binascii

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from csms_security.authority.ca import CertificateUse

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


class CsrRejected(Exception):
    """Why a CSR is refused: ``reason`` fits OCPP's statusInfo.reasonCode (20 characters)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_csr(text: str) -> x509.CertificateSigningRequest:
    """A PEM CSR (a bare base64 DER one is taken too: some stations leave out the armour)."""
    data = text.strip().encode()
    try:
        if data.startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(base64.b64decode(data, validate=False))
    except (ValueError, binascii.Error) as exc:
        raise CsrRejected(
            "InvalidCSR", f"not a PKCS#10 certificate signing request: {exc}"
        ) from exc


def check_csr(
    text: str, *, station_id: str, organization: str, use: CertificateUse
) -> x509.CertificateSigningRequest:
    """The parsed CSR if it may be signed for ``station_id``; CsrRejected otherwise."""
    csr = parse_csr(text)
    if not csr.is_signature_valid:
        raise CsrRejected("InvalidSignature", "the CSR's signature does not verify")
    _check_subject(csr.subject, station_id, organization, use)
    _check_key(csr.public_key(), use)
    return csr


def _check_subject(
    subject: x509.Name, station_id: str, organization: str, use: CertificateUse
) -> None:
    common_names = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    organizations = [
        str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ]
    if len(common_names) != 1 or not common_names[0]:
        raise CsrRejected("InvalidCommonName", "the CSR needs exactly one commonName")
    # The V2G (SECC) certificate names the SECC (ISO15118Ctrlr.SeccId), not the station;
    # the one the station presents to us must name the station (A00.FR.xx / whitepaper 3.3).
    if use in (CertificateUse.CHARGING_STATION, CertificateUse.COMBINED) and (
        common_names[0] != station_id
    ):
        raise CsrRejected(
            "InvalidCommonName",
            f"the CSR's commonName is {common_names[0]!r}, not the station id {station_id!r}",
        )
    if organizations != [organization]:
        found = ", ".join(repr(o) for o in organizations) or "none"
        raise CsrRejected(
            "InvalidOrganization",
            f"the CSR's organizationName is {found}, not {organization!r}",
        )


def _check_key(key: object, use: CertificateUse) -> None:
    # A combined certificate serves ISO 15118 only "if implemented" (A02): RSA stays allowed.
    v2g = use in (CertificateUse.V2G, CertificateUse.V2G20)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            raise CsrRejected(
                "WeakKey", f"an EC key of {key.curve.key_size} bits; at least {MIN_EC_BITS}"
            )
        return
    if isinstance(key, rsa.RSAPublicKey) and not v2g:
        if key.key_size < MIN_RSA_BITS:
            raise CsrRejected(
                "WeakKey", f"an RSA key of {key.key_size} bits; at least {MIN_RSA_BITS}"
            )
        return
    kind = type(key).__name__.removeprefix("_").replace("PublicKey", "")
    wanted = "an EC key" if v2g else "an RSA or EC key"
    raise CsrRejected("UnsupportedKey", f"a {kind} key; {use.value} needs {wanted}")

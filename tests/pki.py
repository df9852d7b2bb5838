"""A PKI of the tests' own, and the outside parties of the security tests on loopback.

- ``TestCa``: a CA (root or sub-CA) that issues certificates and CRLs.
- ``csr_pem``: certificate signing requests as stations make them (good and bad).
- ``OcspResponder``: a real OCSP responder (RFC 6960 over HTTP POST), built with
  ``cryptography``, answering Good / Revoked / Unknown from its CA's records.
- ``EstServer``: an external CA speaking EST (RFC 7030 simpleenroll / cacerts).
- ``ContractProviderServer``: a contract-certificate provider (HTTP JSON).
- ``serving(app)``: any of them served by uvicorn on 127.0.0.1, a free port.
"""

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def csr_pem(
    common_name: str,
    organization: str | None,
    key: Key | dsa.DSAPrivateKey | None = None,
) -> str:
    """A station's CSR (PEM) for ``common_name`` / ``organization``, signed by ``key``."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(name(common_name, organization))
    request = builder.sign(key or ec_key(), hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM).decode()


def tampered_csr_pem(common_name: str, organization: str) -> str:
    """A CSR whose signature no longer verifies (one byte of the signature flipped)."""
    der = bytearray(
        x509.load_pem_x509_csr(csr_pem(common_name, organization).encode()).public_bytes(
            serialization.Encoding.DER
        )
    )
    der[-5] ^= 0x01
    body = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


@dataclass
class TestCa:
    """A CA that issues certificates, remembers them and knows which it revoked."""

    __test__ = False  # not a test class

    certificate: x509.Certificate
    key: Key
    revoked: dict[int, datetime] = field(default_factory=dict)
    issued: dict[int, x509.Certificate] = field(default_factory=dict)

    @classmethod
    def root(cls, common_name: str = "Test Root CA", organization: str = "Test PKI") -> "TestCa":
        key = ec_key()
        subject = name(common_name, organization)
        certificate = _ca_builder(subject, subject, key.public_key()).sign(key, hashes.SHA256())
        return cls(certificate, key)

    def sub_ca(self, common_name: str, organization: str = "Test PKI") -> "TestCa":
        key = ec_key()
        certificate = _ca_builder(
            name(common_name, organization), self.certificate.subject, key.public_key()
        ).sign(self.key, hashes.SHA256())
        self.issued[certificate.serial_number] = certificate
        return TestCa(certificate, key)

    def issue(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        *,
        ocsp_url: str | None = None,
        ocsp_signing: bool = False,
        valid_for: timedelta = timedelta(days=30),
        not_before: datetime | None = None,
    ) -> x509.Certificate:
        start = not_before or datetime.now(UTC) - timedelta(minutes=1)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + valid_for)
        )
        if ocsp_url is not None:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(ocsp_url),
                        )
                    ]
                ),
                critical=False,
            )
        if ocsp_signing:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        self.issued[certificate.serial_number] = certificate
        return certificate

    def revoke(self, certificate: x509.Certificate) -> None:
        self.revoked[certificate.serial_number] = datetime.now(UTC) - timedelta(minutes=1)

    def crl(self) -> bytes:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - timedelta(minutes=1))
            .next_update(now + timedelta(hours=1))
        )
        for serial, when in self.revoked.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _ca_builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


# -- loopback servers ---------------------------------------------------------------------------


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """``app`` served on 127.0.0.1 (a free port) until the block ends; yields its base URL."""
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class OcspResponder:
    """Answers OCSP requests about ``ca``'s certificates; signs as ``ca`` or a delegate."""

    def __init__(self, ca: TestCa, *, delegate: tuple[x509.Certificate, Key] | None = None) -> None:
        self.ca = ca
        self.delegate = delegate
        self.requests = 0
        self.app = Starlette(
            routes=[
                Route("/", self._answer, methods=["POST"]),
                Route("/crl", self._crl, methods=["GET"]),
            ]
        )

    async def _crl(self, request: Request) -> Response:
        return Response(self.ca.crl(), media_type="application/pkix-crl")

    async def _answer(self, request: Request) -> Response:
        self.requests += 1
        try:
            asked = ocsp.load_der_ocsp_request(await request.body())
        except ValueError:
            unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            )
            return _ocsp_response(unsuccessful)
        return _ocsp_response(self._response(asked))

    def _response(self, asked: ocsp.OCSPRequest) -> ocsp.OCSPResponse:
        now = datetime.now(UTC)
        serial = asked.serial_number
        if serial in self.ca.revoked:
            status, revoked_at = ocsp.OCSPCertStatus.REVOKED, self.ca.revoked[serial]
        elif serial in self.ca.issued:
            status, revoked_at = ocsp.OCSPCertStatus.GOOD, None
        else:
            status, revoked_at = ocsp.OCSPCertStatus.UNKNOWN, None
        signer_certificate, signer_key = self.delegate or (self.ca.certificate, self.ca.key)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=asked.issuer_name_hash,
                issuer_key_hash=asked.issuer_key_hash,
                serial_number=serial,
                algorithm=asked.hash_algorithm,
                cert_status=status,
                this_update=now - timedelta(minutes=1),
                next_update=now + timedelta(hours=1),
                revocation_time=revoked_at,
                revocation_reason=x509.ReasonFlags.key_compromise if revoked_at else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer_certificate)
        )
        if self.delegate is not None:
            builder = builder.certificates([signer_certificate])
        return builder.sign(signer_key, hashes.SHA256())


def _ocsp_response(response: ocsp.OCSPResponse) -> Response:
    return Response(
        response.public_bytes(serialization.Encoding.DER), media_type="application/ocsp-response"
    )


class EstServer:
    """An external CA: signs what it is sent (EST simpleenroll), or defers or refuses."""

    def __init__(self, ca: TestCa, *, credentials: tuple[str, str] | None = None) -> None:
        self.ca = ca
        self.credentials = credentials
        self.pending = False  # answer 202 (manual approval)
        self.refuse = False  # answer 400
        self.answer_with: x509.Certificate | None = None  # a wrong answer, on purpose
        self.enrolled: list[x509.CertificateSigningRequest] = []
        self.app = Starlette(
            routes=[
                Route("/.well-known/est/simpleenroll", self._enroll, methods=["POST"]),
                Route("/.well-known/est/cacerts", self._cacerts, methods=["GET"]),
            ]
        )

    @property
    def path(self) -> str:
        return "/.well-known/est"

    def _authorized(self, request: Request) -> bool:
        if self.credentials is None:
            return True
        token = base64.b64encode(":".join(self.credentials).encode()).decode()
        return request.headers.get("authorization") == f"Basic {token}"

    async def _enroll(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response("unauthorized", 401, {"WWW-Authenticate": 'Basic realm="est"'})
        if self.refuse:
            return Response("policy refuses this request", 400)
        if self.pending:
            return Response(status_code=202, headers={"Retry-After": "1"})
        csr = x509.load_der_x509_csr(base64.b64decode(await request.body()))
        self.enrolled.append(csr)
        public_key = csr.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
        leaf = self.answer_with or self.ca.issue(csr.subject, public_key)
        # A certs-only set in no particular order, root included, as some CAs send it.
        return _pkcs7([self.ca.certificate, leaf])

    async def _cacerts(self, request: Request) -> Response:
        return _pkcs7([self.ca.certificate])


def _pkcs7(certificates: list[x509.Certificate]) -> Response:
    der = pkcs7.serialize_certificates(certificates, serialization.Encoding.DER)
    return Response(
        base64.encodebytes(der),
        media_type="application/pkcs7-mime; smime-type=certs-only",
        headers={"Content-Transfer-Encoding": "base64"},
    )


class ContractProviderServer:
    """A contract-certificate provider: answers each EXI request with a canned EXI answer."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.received: list[dict[str, Any]] = []
        self.status = "Accepted"
        self.remaining_contracts = 1  # contracts the EV may still fetch (2.1)
        self.app = Starlette(routes=[Route("/", self._answer, methods=["POST"])])

    async def _answer(self, request: Request) -> Response:
        if self.token is not None and request.headers.get("authorization") != (
            f"Bearer {self.token}"
        ):
            return JSONResponse({"error": "unauthorized"}, 401)
        body = await request.json()
        self.received.append(body)
        exi = base64.b64encode(b"EXI:" + base64.b64decode(body["exiRequest"])).decode()
        answer = {"status": self.status, "exiResponse": exi}
        return JSONResponse(answer | {"remainingContracts": self.remaining_contracts})

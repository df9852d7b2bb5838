"""SignCertificate → checked CSR → Accepted → signed → CertificateSigned (2.0.1 A02/A03,
1.6 whitepaper "Update Charge Point certificate").

The consumer decides the answer (the CSR's checks are quick and need no outside
party) and stores an accepted request; the ``Issuer`` signs and delivers it after
the answer is out, so a slow external CA never delays the station's CALLRESULT,
and a request survives a crash of this process: the issuer picks up what is
due, claiming each row first so two replicas never sign the same request twice.
"""

import asyncio
import logging
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Bus
from csms_core.events.security import (
    CertificateEventData,
    CertificateInstalled,
    CertificateIssued,
    CertificateRejected,
)
from csms_core.events.topic import type_name
from csms_core.router import CommandOutcome, StationOffline
from csms_ocpp import OcppVersion
from csms_ocpp.messages import SIGN_CERTIFICATE, GenericStatusResponse, SignCertificateRequest
from csms_security.authority.ca import CertificateUse
from csms_security.authority.csr import CsrRejected, check_csr, parse_csr
from csms_security.authority.signers import (
    CertificateSigner,
    SignedCertificate,
    SigningFailed,
    SigningPending,
)
from csms_security.calls import StationCalls, accepted, describe
from csms_security.certificates import wire
from csms_security.certificates.models import (
    CertificateStatus,
    SigningRequest,
    SigningStatus,
    StationCertificate,
)
from csms_security.context import SECURITY_EVENTS, SOURCE, CallContext, calls
from csms_security.db import utc_now
from csms_security.events.models import EventSource
from csms_security.events.service import count, record, security_event
from csms_security.hashdata import serial_hex
from csms_security.waiting import woken

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
CLAIM_S = 120.0  # a claimed request is this replica's for this long
POLL_S = 5.0
OFFLINE_RETRY_S = 60.0
# A request not delivered by then is given up: the station asks again (or is asked).
GIVE_UP_AFTER = timedelta(days=1)


@calls.decides(SIGN_CERTIFICATE)
async def on_sign_certificate(
    ctx: CallContext, payload: SignCertificateRequest
) -> GenericStatusResponse:
    use = wire.signing_use(ctx.version, payload.get("certificateType"))
    request = SigningRequest(
        id=ctx.envelope.id,
        station_id=ctx.station_id,
        ocpp_version=ctx.version.number,
        certificate_use=use,
        request_id=payload.get("requestId"),
        csr=payload["csr"],
        status=SigningStatus.ACCEPTED,
        next_attempt_at=utc_now(),
        received_at=ctx.received_at,
    )
    try:
        check_csr(
            request.csr,
            station_id=ctx.station_id,
            organization=ctx.settings.organization,
            use=use,
        )
    except CsrRejected as rejected:
        request.status, request.reason = SigningStatus.REJECTED, rejected.detail[:500]
        request.next_attempt_at = None
        ctx.session.add(request)
        record(
            ctx,
            "CsrRejected",
            timestamp=ctx.received_at,
            tech_info=f"{use.value}: {rejected.detail}",
            source=EventSource.CSMS,
        )
        logger.info("CSR of %s rejected: %s", ctx.station_id, rejected.detail)
        return _answer(ctx.version, "Rejected", rejected.reason, rejected.detail)
    ctx.session.add(request)
    return _answer(ctx.version, "Accepted")


def _answer(
    version: OcppVersion, status: str, reason: str | None = None, detail: str = ""
) -> GenericStatusResponse:
    answer: GenericStatusResponse = {"status": status}
    if reason is not None and version.is_2x:
        limit = 1024 if version is OcppVersion.V21 else 512
        answer["statusInfo"] = {"reasonCode": reason, "additionalInfo": detail[:limit]}
    return answer


class Issuer:
    """Signs accepted requests and delivers the certificates (CertificateSigned)."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        bus: Bus,
        calls: StationCalls,
        signers: dict[CertificateUse, CertificateSigner],
    ) -> None:
        self._factory = factory
        self._bus = bus
        self._calls = calls
        self._signers = signers
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A request was accepted: work on it now rather than at the next poll."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self._wake.clear()
            try:
                await self.work_once()
            except Exception:
                logger.exception("issuer round failed")
            await woken(self._wake, stopping, POLL_S)

    async def work_once(self) -> int:
        """Sign and deliver what is due; the number of requests worked on."""
        due = await self._claim_due()
        for request_id in due:
            await self._work_on(request_id)
        return len(due)

    async def _claim_due(self) -> list[str]:
        now = utc_now()
        async with self._factory() as session:
            rows = await session.exec(
                select(SigningRequest.id, SigningRequest.next_attempt_at)
                .where(
                    col(SigningRequest.status).in_([SigningStatus.ACCEPTED, SigningStatus.SIGNED]),
                    col(SigningRequest.next_attempt_at) <= now,
                )
                .order_by(col(SigningRequest.next_attempt_at))
                .limit(100)
            )
            candidates = list(rows.all())
        claimed = []
        for request_id, seen in candidates:
            async with self._factory() as session, session.begin():
                result = await session.exec(
                    update(SigningRequest)
                    .where(
                        col(SigningRequest.id) == request_id,
                        col(SigningRequest.next_attempt_at) == seen,
                    )
                    .values(next_attempt_at=now + timedelta(seconds=CLAIM_S))
                )
            if result.rowcount == 1:
                claimed.append(request_id)
        return claimed

    async def _work_on(self, request_id: str) -> None:
        async with self._factory() as session:
            request = await session.get(SigningRequest, request_id)
        if request is None:
            return
        if utc_now() - request.received_at > GIVE_UP_AFTER:
            await self._finish(request, SigningStatus.FAILED, "not delivered within a day")
            return
        if request.status is SigningStatus.ACCEPTED:
            signed = await self._sign(request)
            if signed is None:
                return
        await self._deliver(request)

    async def _sign(self, request: SigningRequest) -> SignedCertificate | None:
        signer = self._signers[request.certificate_use]
        try:
            signed = await signer.sign(parse_csr(request.csr), request.certificate_use)
        except SigningPending as pending:
            await self._retry(request, pending.retry_after_s, str(pending), count_attempt=False)
            return None
        except (SigningFailed, CsrRejected) as exc:
            logger.warning("signing for %s failed: %s", request.station_id, exc)
            await self._retry(request, 30.0 * 2**request.attempts, str(exc))
            return None
        certificate = self._stored(request, signed, signer.name)
        async with self._factory() as session, session.begin():
            session.add(certificate)
            request.status, request.serial = SigningStatus.SIGNED, certificate.serial
            request.updated_at = utc_now()
            await session.merge(request)
        await self._publish(CertificateIssued, certificate)
        return signed

    def _stored(
        self, request: SigningRequest, signed: SignedCertificate, signer: str
    ) -> StationCertificate:
        leaf = signed.leaf
        return StationCertificate(
            serial=serial_hex(leaf.serial_number),
            station_id=request.station_id,
            certificate_use=request.certificate_use,
            subject=leaf.subject.rfc4514_string(),
            issuer=leaf.issuer.rfc4514_string(),
            issuer_key_id=authority_key_id(leaf),
            signer=signer,
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex(),
            certificate_pem=signed.chain_pem,
            status=CertificateStatus.ISSUED,
            signing_request_id=request.id,
        )

    async def _deliver(self, request: SigningRequest) -> None:
        async with self._factory() as session:
            certificate = await session.get(StationCertificate, request.serial or "")
        if certificate is None:
            await self._finish(request, SigningStatus.FAILED, "the signed certificate is missing")
            return

        def build(version: OcppVersion) -> tuple[str, dict[str, object]]:
            return "CertificateSigned", wire.certificate_signed(
                version, certificate.certificate_pem, request.certificate_use, request.request_id
            )

        try:
            result = await self._calls.call(request.station_id, build)
        except StationOffline:
            await self._retry(request, OFFLINE_RETRY_S, "station offline", count_attempt=False)
            return
        if accepted(result):
            await self._installed(request, certificate)
        elif result.outcome is CommandOutcome.RESULT:
            await self._refused(request, certificate, describe(result))
        else:
            await self._retry(request, 30.0 * 2**request.attempts, describe(result))

    async def _installed(self, request: SigningRequest, certificate: StationCertificate) -> None:
        async with self._factory() as session, session.begin():
            older = await session.exec(
                select(StationCertificate).where(
                    StationCertificate.station_id == request.station_id,
                    StationCertificate.status == CertificateStatus.ACTIVE,
                    col(StationCertificate.certificate_use).in_(
                        _replaced_by(request.certificate_use)
                    ),
                )
            )
            for previous in older.all():
                previous.status = CertificateStatus.SUPERSEDED
                session.add(previous)
            certificate.status = CertificateStatus.ACTIVE
            await session.merge(certificate)
            _set(request, SigningStatus.DELIVERED, None)
            await session.merge(request)
        logger.info("certificate %s installed on %s", certificate.serial, request.station_id)
        await self._publish(CertificateInstalled, certificate)

    async def _refused(
        self, request: SigningRequest, certificate: StationCertificate, reason: str
    ) -> None:
        event, published = security_event(
            request.station_id,
            request.ocpp_version,
            "CertificateRejectedByStation",
            event_id=f"{request.id}.refused",
            timestamp=utc_now(),
            tech_info=f"{certificate.serial}: {reason}",
            source=EventSource.CSMS,
        )
        async with self._factory() as session, session.begin():
            certificate.status = CertificateStatus.REJECTED
            await session.merge(certificate)
            _set(request, SigningStatus.STATION_REJECTED, reason)
            await session.merge(request)
            session.add(event)
        count(event)
        await self._bus.publish(SECURITY_EVENTS, published)
        await self._publish(CertificateRejected, certificate, reason)

    async def _retry(
        self, request: SigningRequest, after_s: float, reason: str, *, count_attempt: bool = True
    ) -> None:
        attempts = request.attempts + (1 if count_attempt else 0)
        if attempts >= MAX_ATTEMPTS:
            await self._finish(request, SigningStatus.FAILED, reason)
            return
        async with self._factory() as session, session.begin():
            request.attempts, request.reason = attempts, reason[:500]
            request.next_attempt_at = utc_now() + timedelta(seconds=after_s)
            request.updated_at = utc_now()
            await session.merge(request)

    async def _finish(self, request: SigningRequest, status: SigningStatus, reason: str) -> None:
        logger.warning("signing request %s of %s: %s", request.id, request.station_id, reason)
        async with self._factory() as session, session.begin():
            _set(request, status, reason)
            await session.merge(request)

    async def _publish(
        self,
        model: type[CertificateIssued | CertificateInstalled | CertificateRejected],
        certificate: StationCertificate,
        reason: str | None = None,
    ) -> None:
        data = CertificateEventData(
            serial=certificate.serial,
            certificate_use=certificate.certificate_use.value,
            not_after=certificate.not_after,
            reason=reason,
        )
        await self._bus.publish(
            SECURITY_EVENTS,
            model(
                id=f"{certificate.serial}.{type_name(model)}",
                source=SOURCE,
                station_id=certificate.station_id,
                data=data,
            ),
        )


def _set(request: SigningRequest, status: SigningStatus, reason: str | None) -> None:
    request.status, request.next_attempt_at = status, None
    request.reason = reason[:500] if reason else None
    request.updated_at = utc_now()


def _replaced_by(use: CertificateUse) -> list[CertificateUse]:
    """The active certificates a newly installed one of ``use`` supersedes."""
    if use is CertificateUse.COMBINED:
        return list(CertificateUse)
    return [use, CertificateUse.COMBINED]


def authority_key_id(certificate: x509.Certificate) -> str:
    """The key identifier of the CA that issued ``certificate`` (hex; empty if it names none)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return ""
    return (extension.value.key_identifier or b"").hex()


def key_id(certificate: x509.Certificate) -> str:
    """A CA's own key identifier, as its certificates' authorityKeyIdentifier names it."""
    return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest.hex()

"""REST: the CA certificate, certificates issued, signing requests, renewal, and the CA
certificates stations hold (install, list, refresh, delete)."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, Field
from sqlmodel import col, select

from csms_api.auth import AdminDep, ViewerDep, sees_station
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_core.router import StationOffline
from csms_security.api.commands import (
    StationAnswer,
    call_problems,
    station_answer,
    station_offline,
)
from csms_security.api.deps import (
    Page,
    PageDep,
    ServiceDep,
    SessionDep,
    StationIdDep,
    paged,
    visible_to,
)
from csms_security.authority.ca import CertificateUse, pem
from csms_security.authority.signers import SigningFailed
from csms_security.certificates import inventory
from csms_security.certificates.models import (
    CertificateStatus,
    InstalledCertificate,
    SigningRequest,
    SigningStatus,
    StationCertificate,
)
from csms_security.certificates.wire import CaCertificateType, Untranslatable
from csms_security.db import utc_now

router = APIRouter(route_class=ProblemRoute, tags=["certificates"])
PEM_MEDIA_TYPE = "application/x-pem-file"


class IssuedCertificate(BaseModel):
    serial: str = Field(examples=["5f1c0a9d3e"])
    station_id: str
    certificate_use: CertificateUse
    subject: str = Field(examples=["CN=CP-001,O=Example CPO"])
    issuer: str
    signer: str = Field(description="local (this CSMS's CA) or est (an external CA)")
    status: CertificateStatus
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    issued_at: datetime
    renewal_requested_at: datetime | None


class IssuedCertificateDetail(IssuedCertificate):
    certificate_pem: str = Field(description="The certificate and the chain sent with it (PEM)")


class SigningRequestOut(BaseModel):
    id: str
    station_id: str
    certificate_use: CertificateUse
    status: SigningStatus
    reason: str | None
    serial: str | None
    attempts: int
    received_at: datetime
    updated_at: datetime


class InstalledCertificateOut(BaseModel):
    id: str = Field(description="Ours: names the entry in DELETE")
    certificate_type: str = Field(
        description="As the station's OCPP version names it", examples=["CSMSRootCertificate"]
    )
    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    parent_id: str | None = Field(description="The V2GCertificateChain entry it belongs to")
    reported_at: datetime


def _type_name(value: object) -> object:
    return CaCertificateType.parse(value) if isinstance(value, str) else value


# 2.x names; the 1.6 CentralSystemRootCertificate is taken for CSMSRootCertificate.
CertificateTypeIn = Annotated[CaCertificateType, BeforeValidator(_type_name)]


class InstallRequest(BaseModel):
    certificate_type: CertificateTypeIn = Field(examples=["CSMSRootCertificate"])
    certificate: str = Field(max_length=10000, description="One PEM certificate")


class RefreshRequest(BaseModel):
    certificate_types: list[CertificateTypeIn] | None = Field(
        default=None, max_length=8, description="The types to ask for (default: all)"
    )


class RenewRequest(BaseModel):
    certificate_use: CertificateUse = Field(
        default=CertificateUse.CHARGING_STATION,
        description="The certificate the station is asked to re-sign (Combined: 2.x both)",
    )


# -- the CA and the certificates issued ------------------------------------------------------------


@router.get(
    "/certificates/ca",
    response_class=Response,
    responses={200: {"content": {PEM_MEDIA_TYPE: {}}}, **problem_responses(502)},
)
async def ca_certificate(caller: ViewerDep, service: ServiceDep) -> Response:
    """The CA certificates station certificates chain to (PEM): the profile-3 trust anchor."""
    signer = service.signers[CertificateUse.CHARGING_STATION]
    try:
        certificates = await signer.ca_certificates()
    except SigningFailed as exc:
        raise Problem(502, str(exc), kind="ca-unavailable") from exc
    return Response("".join(pem(c) for c in certificates), media_type=PEM_MEDIA_TYPE)


@router.get("/certificates")
async def list_certificates(
    caller: ViewerDep,
    session: SessionDep,
    page: PageDep,
    station_id: Annotated[str | None, Query(max_length=48)] = None,
    status: CertificateStatus | None = None,
    expiring_within_days: Annotated[float | None, Query(gt=0, le=36500)] = None,
) -> Page[IssuedCertificate]:
    """Certificates issued to stations, soonest to expire first."""
    query = visible_to(caller, select(StationCertificate), col(StationCertificate.station_id))
    if station_id is not None:
        query = query.where(StationCertificate.station_id == station_id)
    if status is not None:
        query = query.where(StationCertificate.status == status)
    if expiring_within_days is not None:
        horizon = utc_now() + timedelta(days=expiring_within_days)
        query = query.where(col(StationCertificate.not_after) <= horizon)
    return await paged(session, query, page, IssuedCertificate, col(StationCertificate.not_after))


@router.get("/certificates/{serial}", responses=problem_responses(404))
async def get_certificate(
    caller: ViewerDep,
    request: Request,
    session: SessionDep,
    serial: Annotated[str, Path(max_length=40, pattern="^[0-9a-fA-F]+$")],
) -> IssuedCertificateDetail:
    """One issued certificate, with its PEM."""
    certificate = await session.get(StationCertificate, serial.lower().lstrip("0") or "0")
    if certificate is None or not await sees_station(request, caller, certificate.station_id):
        raise Problem(404, f"no certificate {serial} was issued here", kind="unknown-certificate")
    return IssuedCertificateDetail.model_validate(certificate, from_attributes=True)


@router.get("/stations/{station_id}/certificates")
async def station_certificates(
    caller: ViewerDep, session: SessionDep, station_id: StationIdDep, page: PageDep
) -> Page[IssuedCertificate]:
    """The certificates issued to one station, newest first."""
    query = select(StationCertificate).where(StationCertificate.station_id == station_id)
    order = col(StationCertificate.issued_at).desc()
    return await paged(session, query, page, IssuedCertificate, order)


@router.get("/stations/{station_id}/certificates/signing-requests")
async def signing_requests(
    caller: ViewerDep, session: SessionDep, station_id: StationIdDep, page: PageDep
) -> Page[SigningRequestOut]:
    """A station's SignCertificate requests and how each went, newest first."""
    query = select(SigningRequest).where(SigningRequest.station_id == station_id)
    order = col(SigningRequest.received_at).desc()
    return await paged(session, query, page, SigningRequestOut, order)


@router.post(
    "/stations/{station_id}/certificates/renew", responses=problem_responses(409, 422, 502, 504)
)
async def renew(
    caller: AdminDep,
    service: ServiceDep,
    station_id: StationIdDep,
    body: RenewRequest | None = None,
) -> StationAnswer:
    """Ask a station for a new CSR now (TriggerMessage / 1.6 ExtendedTriggerMessage)."""
    use = (body or RenewRequest()).certificate_use
    with call_problems(station_id):
        result = await service.renewals.request(station_id, use)
    if result is None:
        raise station_offline(station_id)
    return station_answer(result)


# -- CA certificates the station holds -------------------------------------------------------


@router.get("/stations/{station_id}/certificates/installed")
async def installed_certificates(
    caller: ViewerDep, session: SessionDep, station_id: StationIdDep
) -> list[InstalledCertificateOut]:
    """The CA certificates the station reported holding, as of its last refresh."""
    rows = await inventory.installed(session, station_id)
    return [InstalledCertificateOut.model_validate(row, from_attributes=True) for row in rows]


@router.post(
    "/stations/{station_id}/certificates/installed",
    responses=problem_responses(409, 422, 502, 504),
)
async def install_certificate(
    caller: AdminDep,
    service: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: InstallRequest,
) -> StationAnswer:
    """Install a CA certificate on a station (InstallCertificate), then refresh the list."""
    with call_problems(station_id):
        try:
            result = await inventory.install(
                service.calls, station_id, body.certificate_type, body.certificate
            )
        except inventory.BadCertificate as exc:
            raise Problem(422, str(exc), kind="invalid-certificate") from exc
    answer = station_answer(result)
    if answer.status == "Accepted":
        await _refresh_quietly(service, session, station_id, [body.certificate_type])
    return answer


@router.post(
    "/stations/{station_id}/certificates/installed/refresh",
    responses=problem_responses(409, 422, 502, 504),
)
async def refresh_installed(
    caller: AdminDep,
    service: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: RefreshRequest | None = None,
) -> list[StationAnswer]:
    """Ask the station which CA certificates it holds (GetInstalledCertificateIds)."""
    types = body.certificate_types if body is not None else None
    with call_problems(station_id):
        results = await inventory.refresh(session, service.calls, station_id, types)
    return [station_answer(result) for result in results]


@router.delete(
    "/stations/{station_id}/certificates/installed/{certificate_id}",
    responses=problem_responses(404, 409, 502, 504),
)
async def delete_installed(
    caller: AdminDep,
    service: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    certificate_id: Annotated[str, Path(max_length=32, pattern="^[0-9a-f]+$")],
) -> StationAnswer:
    """Delete a CA certificate from a station (DeleteCertificate)."""
    row = await session.get(InstalledCertificate, certificate_id)
    if row is None or row.station_id != station_id:
        raise Problem(
            404, f"{station_id} reported no certificate {certificate_id}",
            kind="unknown-installed-certificate",
        )  # fmt: skip
    with call_problems(station_id):
        result = await inventory.remove(session, service.calls, row)
    return station_answer(result)


# -- helpers -------------------------------------------------------------------------------------


async def _refresh_quietly(
    service: ServiceDep, session: SessionDep, station_id: str, types: list[CaCertificateType]
) -> None:
    """The list after an install: best effort (the install itself already succeeded)."""
    try:
        await inventory.refresh(session, service.calls, station_id, types)
    except (StationOffline, Untranslatable):
        return

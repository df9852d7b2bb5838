"""REST: security events, fleet-wide and per station."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from csms_api.auth import ViewerDep
from csms_api.problems import ProblemRoute
from csms_security.api.deps import Page, PageDep, SessionDep, StationIdDep, paged, visible_to
from csms_security.events.classification import Severity, names_of
from csms_security.events.models import EventSource, SecurityEvent

router = APIRouter(route_class=ProblemRoute, tags=["security events"])


class SecurityEventOut(BaseModel):
    id: str
    station_id: str
    type: str = Field(description="As reported", examples=["InvalidCentralSystemCertificate"])
    name_2x: str | None = Field(examples=["InvalidCsmsCertificate"])
    name_16: str | None = Field(examples=["InvalidCentralSystemCertificate"])
    severity: Severity
    critical: bool = Field(description="Critical per the spec of the station's OCPP version")
    source: EventSource
    ocpp_version: str | None
    timestamp: datetime = Field(description="When it happened (the station's clock)")
    received_at: datetime
    tech_info: str | None


TypeQuery = Annotated[
    str | None,
    Query(max_length=50, description="Either version's name matches (e.g. InvalidCsmsCertificate)"),
]
SinceQuery = Annotated[datetime | None, Query(description="timestamp at or after")]
UntilQuery = Annotated[datetime | None, Query(description="timestamp before")]


def _filtered(
    query: SelectOfScalar[SecurityEvent],
    severity: Severity | None,
    event_type: str | None,
    source: EventSource | None,
    since: datetime | None,
    until: datetime | None,
) -> SelectOfScalar[SecurityEvent]:
    if severity is not None:
        query = query.where(SecurityEvent.severity == severity)
    if event_type is not None:
        names = sorted(names_of(event_type))
        query = query.where(
            or_(col(SecurityEvent.type).in_(names), col(SecurityEvent.name_2x).in_(names))
        )
    if source is not None:
        query = query.where(SecurityEvent.source == source)
    if since is not None:
        query = query.where(col(SecurityEvent.timestamp) >= since)
    if until is not None:
        query = query.where(col(SecurityEvent.timestamp) < until)
    return query


@router.get("/security-events")
async def list_security_events(
    caller: ViewerDep,
    session: SessionDep,
    page: PageDep,
    station_id: Annotated[str | None, Query(max_length=48)] = None,
    severity: Severity | None = None,
    type: TypeQuery = None,
    source: EventSource | None = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
) -> Page[SecurityEventOut]:
    """Security events of the whole fleet, newest first."""
    query = visible_to(caller, select(SecurityEvent), col(SecurityEvent.station_id))
    if station_id is not None:
        query = query.where(SecurityEvent.station_id == station_id)
    query = _filtered(query, severity, type, source, since, until)
    return await paged(session, query, page, SecurityEventOut, col(SecurityEvent.timestamp).desc())


@router.get("/stations/{station_id}/security-events")
async def station_security_events(
    caller: ViewerDep,
    session: SessionDep,
    station_id: StationIdDep,
    page: PageDep,
    severity: Severity | None = None,
    type: TypeQuery = None,
    source: EventSource | None = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
) -> Page[SecurityEventOut]:
    """One station's security events, newest first."""
    query = select(SecurityEvent).where(SecurityEvent.station_id == station_id)
    query = _filtered(query, severity, type, source, since, until)
    return await paged(session, query, page, SecurityEventOut, col(SecurityEvent.timestamp).desc())

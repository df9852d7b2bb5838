"""REST routes of station configuration: read what is stored, query, change, refresh, report."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import col, select

from csms_api.auth import AdminDep, OperatorDep, ViewerDep
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_ocpp import OcppVersion
from csms_ocpp.secrets import is_secret_key, is_secret_variable
from csms_sessions.api.deps import PageDep, ServiceDep, SessionDep, StationIdDep
from csms_sessions.api.pagination import Page
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import CommandResponse, TimeoutQuery
from csms_sessions.commands.translate import Untranslatable
from csms_sessions.configuration import service, translate
from csms_sessions.configuration.models import (
    DeviceModelVariable,
    ReportRequest,
    ReportState,
    StationConfiguration,
    VariableRef,
)
from csms_sessions.configuration.translate import (
    ConfigurationChange,
    ConfigurationQuery,
    CustomReportCommand,
    ItemResult,
    ItemResults,
    RefreshCommand,
)
from csms_sessions.db import utc_now
from csms_sessions.remote.calls import call, check_payload, not_in_version, online_version
from csms_sessions.service import SessionsService
from csms_sessions.stations.models import Station
from csms_sessions.stations.rotation import TAKEN, rotating

router = APIRouter(
    route_class=DocumentedRoute,
    prefix="/stations/{station_id}/configuration",
    tags=["configuration"],
    responses=problem_responses(404, 409, 422, 502, 504),
)
T = TypeVar("T")


class ConfigurationItem(BaseModel):
    """A stored 1.6 configuration key (``key``) or 2.x device model variable attribute.

    Fields that do not apply (or that the station left out, e.g. the value of a
    WriteOnly variable) are omitted from the JSON."""

    key: str | None = Field(default=None, examples=["HeartbeatInterval"], description="1.6")
    component: str | None = Field(default=None, examples=["OCPPCommCtrlr"], description="2.x")
    component_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    variable: str | None = Field(default=None, examples=["HeartbeatInterval"], description="2.x")
    variable_instance: str | None = None
    attribute_type: str | None = Field(default=None, examples=["Actual"])
    value: str | None = Field(examples=["300"])
    readonly: bool
    mutability: str | None = Field(default=None, examples=["ReadWrite"], description="2.x")
    data_type: str | None = None
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: str | None = None
    updated_at: datetime

    @classmethod
    def of_key(cls, row: StationConfiguration) -> "ConfigurationItem":
        return cls(key=row.key, value=row.value, readonly=row.readonly, updated_at=row.updated_at)

    @classmethod
    def of_variable(cls, row: DeviceModelVariable) -> "ConfigurationItem":
        return cls.model_validate(
            row.model_dump(exclude={"station_id", "variable_key"})
            | {"readonly": row.mutability == "ReadOnly"}
        )


class ReportResponse(CommandResponse):
    """The station's answer to a report request; the report follows in NotifyReport parts."""

    request_id: int | None = Field(default=None, description="2.x requestId of the report")


# The requests of the device model's reports (the table also keeps monitoring reports and
# customer information requests, served under their own routes).
DEVICE_MODEL_REPORTS = ("GetBaseReport", "GetReport")
RequestIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the 2.x requestId")]


class ReportOut(BaseModel):
    """A report we asked for and how many of its parts came (OCPP 2.0.1 B07/B08)."""

    model_config = ConfigDict(from_attributes=True)

    request_id: int = Field(examples=[12])
    action: str = Field(examples=["GetBaseReport"])
    request: dict[str, Any] = Field(examples=[{"reportBase": "FullInventory"}])
    requested_at: datetime
    status: str | None = Field(examples=["Accepted"], description="the station's answer")
    state: ReportState
    parts_received: int = Field(examples=[2])
    seq_nos: list[int] = Field(examples=[[0, 2]], description="the parts received")
    last_seq_no: int | None = Field(examples=[2], description="the part marked last, if seen")
    missing_seq_nos: list[int] = Field(examples=[[1]])
    completed_at: datetime | None
    repeat_of: int | None = Field(description="the request this one repeats")

    @classmethod
    def of(cls, report: ReportRequest, part_timeout_s: float) -> "ReportOut":
        state = report.state(utc_now(), timedelta(seconds=part_timeout_s))
        return cls.model_validate(
            report.model_dump() | {"state": state, "missing_seq_nos": report.missing_seq_nos()}
        )


@router.get("/reports", responses=problem_responses(404, 422))
async def list_reports(
    caller: ViewerDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    page: PageDep,
) -> Page[ReportOut]:
    """The reports asked of a station, newest first, with their parts and what is missing."""
    return await reports_page(sessions, session, station_id, page, DEVICE_MODEL_REPORTS)


async def reports_page(
    sessions: SessionsService,
    session: SessionDep,
    station_id: str,
    page: PageDep,
    actions: tuple[str, ...],
) -> Page[ReportOut]:
    """A page of the station's requests of ``actions``, newest first."""
    mine = (col(ReportRequest.station_id) == station_id) & col(ReportRequest.action).in_(actions)
    query = select(ReportRequest).where(mine).order_by(col(ReportRequest.request_id).desc())
    rows = (await session.exec(query.offset(page.offset).limit(page.limit))).all()
    total = (await session.exec(select(func.count()).select_from(ReportRequest).where(mine))).one()
    timeout = sessions.settings.report_part_timeout_s
    items = [ReportOut.of(row, timeout) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/reports/{request_id}", responses=problem_responses(404, 422))
async def get_report(
    caller: ViewerDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    request_id: RequestIdPath,
) -> ReportOut:
    """One report request: its state (complete only with every part) and missing parts."""
    report = await report_of(session, station_id, request_id)
    return ReportOut.of(report, sessions.settings.report_part_timeout_s)


@router.post("/reports/{request_id}/repeat")
async def repeat_report(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    request_id: RequestIdPath,
    timeout_s: TimeoutQuery = None,
) -> ReportResponse:
    """Ask for a report again (a new requestId), e.g. one that came incomplete."""
    report = await report_of(session, station_id, request_id)
    version = await online_version(sessions, session, station_id)
    if not version.is_2x:
        raise Problem(422, "OCPP 1.6 has no reports to repeat", kind="not-in-this-ocpp-version")
    return await request_report(
        sessions,
        station_id,
        version,
        timeout_s,
        report.action,
        report.request,
        repeat_of=request_id,
    )


async def report_of(
    session: SessionDep,
    station_id: str,
    request_id: int,
    actions: tuple[str, ...] = DEVICE_MODEL_REPORTS,
) -> ReportRequest:
    """The station's request ``request_id`` of one of ``actions``; 404 if there is none."""
    report = await session.get(ReportRequest, request_id)
    if report is None or report.station_id != station_id or report.action not in actions:
        raise Problem(404, f"no report {request_id} of {station_id}", kind="unknown-report")
    return report


@router.get("", responses=problem_responses(404, 422), response_model_exclude_none=True)
async def read_configuration(
    caller: ViewerDep, session: SessionDep, station_id: StationIdDep, page: PageDep
) -> Page[ConfigurationItem]:
    """The configuration last reported by a station (1.6 keys or the 2.x device model)."""
    station = await session.get(Station, station_id)
    if station is None:
        raise Problem(404, f"no station {station_id}", kind="unknown-station")
    items: Sequence[ConfigurationItem]
    if OcppVersion.from_number(station.ocpp_version or "1.6").is_2x:
        rows, total = await service.device_model(session, station_id, page.limit, page.offset)
        items = [ConfigurationItem.of_variable(row) for row in rows]
    else:
        keys, total = await service.configuration_keys(session, station_id, page.limit, page.offset)
        items = [ConfigurationItem.of_key(row) for row in keys]
    return Page(items=list(items), total=total, limit=page.limit, offset=page.offset)


@router.post("/refresh")
async def refresh_configuration(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: RefreshCommand | None = None,
    timeout_s: TimeoutQuery = None,
) -> ReportResponse:
    """Ask for the whole configuration: 1.6 GetConfiguration, 2.x GetBaseReport (async report)."""
    version = await online_version(sessions, session, station_id)
    command = body or RefreshCommand()
    if version.is_2x:
        return await request_report(
            sessions,
            station_id,
            version,
            timeout_s,
            "GetBaseReport",
            {"reportBase": command.report_base},
        )
    action, payload = translate.get_configuration(None)
    response = await call(sessions, station_id, version, action, payload, timeout_s)
    async with transaction(sessions.factory) as writer:
        keys = (response.response or {}).get("configurationKey", [])
        await service.store_keys(writer, station_id, keys)
    return ReportResponse(**response.model_dump())


@router.post("/report")
async def custom_report(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: CustomReportCommand,
    timeout_s: TimeoutQuery = None,
) -> ReportResponse:
    """Ask a 2.x station for a custom report (GetReport by criteria or component/variables)."""
    version = await online_version(sessions, session, station_id)
    try:
        _, payload = translate.get_report(body, version, request_id=0)
    except Untranslatable as exc:
        raise not_in_version(exc) from exc
    payload.pop("requestId")
    return await request_report(sessions, station_id, version, timeout_s, "GetReport", payload)


@router.post("/query", response_model_exclude_none=True)
async def query_configuration(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: ConfigurationQuery,
    timeout_s: TimeoutQuery = None,
) -> ItemResults:
    """Read values from the station now (1.6 GetConfiguration by key, 2.x GetVariables)."""
    version = await online_version(sessions, session, station_id)
    try:
        if not version.is_2x:
            keys = [item.key_in(version) for item in body.items]
            return ItemResults(items=await _query_keys(sessions, station_id, keys, timeout_s))
        refs = [item.ref_in(version) for item in body.items]
    except Untranslatable as exc:
        raise not_in_version(exc) from exc
    chunk = await service.items_per_message(session, station_id, "GetVariables")
    results: list[ItemResult] = []
    for part in chunks(refs, chunk):
        results += await _get_variables(sessions, station_id, version, part, timeout_s)
    return ItemResults(items=results)


@router.put("", response_model_exclude_none=True)
async def change_configuration(
    caller: AdminDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: ConfigurationChange,
    timeout_s: TimeoutQuery = None,
) -> ItemResults:
    """Set values on the station (1.6 ChangeConfiguration per key, 2.x SetVariables).

    A new station password (1.6 AuthorizationKey, 2.x SecurityCtrlr.BasicAuthPassword) is
    rotated as ``PUT /stations/{station_id}/password`` does it, and never stored or shown."""
    version = await online_version(sessions, session, station_id)
    try:
        if not version.is_2x:
            changes = [(item.key_in(version), item.value) for item in body.items]
            secrets = [value for key, value in changes if is_secret_key(key)]
        else:
            values = [(item.ref_in(version), item.value) for item in body.items]
            secrets = [v for ref, v in values if is_secret_variable(ref.component, ref.variable)]
    except Untranslatable as exc:
        raise not_in_version(exc) from exc
    if len(secrets) > 1:
        raise Problem(422, "one new station password at a time", kind="invalid-request")
    password = secrets[0] if secrets else None
    async with rotating(sessions.identities, station_id, password) as rotation:
        if not version.is_2x:
            items = await _change_keys(sessions, station_id, changes, timeout_s)
        else:
            items = await _change_variables(
                sessions, session, station_id, version, values, timeout_s
            )
        rotation.taken = any(item.status in TAKEN for item in items if _is_secret(item))
    return ItemResults(items=items)


async def _change_variables(
    sessions: SessionsService,
    session: SessionDep,
    station_id: str,
    version: OcppVersion,
    values: list[tuple[VariableRef, str]],
    timeout_s: float | None,
) -> list[ItemResult]:
    check_payload(version, *translate.set_variables(values))  # before sending any part
    chunk = await service.items_per_message(session, station_id, "SetVariables")
    results: list[ItemResult] = []
    for part in chunks(values, chunk):
        results += await _set_variables(sessions, station_id, version, part, timeout_s)
    return results


def _is_secret(item: ItemResult) -> bool:
    if item.key is not None:
        return is_secret_key(item.key)
    return is_secret_variable(item.component or "", item.variable or "")


async def request_report(
    sessions: SessionsService,
    station_id: str,
    version: OcppVersion,
    timeout_s: float | None,
    action: str,
    request: dict[str, Any],
    *,
    repeat_of: int | None = None,
) -> ReportResponse:
    check_payload(version, action, {"requestId": 0, **request})
    async with transaction(sessions.factory) as writer:
        report = ReportRequest(
            station_id=station_id, action=action, request=request, repeat_of=repeat_of
        )
        writer.add(report)
        await writer.flush()
    payload = {"requestId": report.request_id, **request}
    response = await call(sessions, station_id, version, action, payload, timeout_s)
    async with transaction(sessions.factory) as writer:
        report.status = response.status
        await writer.merge(report)
    return ReportResponse(**response.model_dump(), request_id=report.request_id)


async def _query_keys(
    sessions: SessionsService, station_id: str, keys: list[str], timeout_s: float | None
) -> list[ItemResult]:
    action, payload = translate.get_configuration(keys)
    response = await call(sessions, station_id, OcppVersion.V16, action, payload, timeout_s)
    answer = response.response or {}
    async with transaction(sessions.factory) as writer:
        known = [entry for entry in answer.get("configurationKey", []) if entry["key"] in keys]
        await service.store_keys(writer, station_id, known)
    return translate.get_configuration_results(keys, answer)


async def _change_keys(
    sessions: SessionsService,
    station_id: str,
    changes: list[tuple[str, str]],
    timeout_s: float | None,
) -> list[ItemResult]:
    for key, value in changes:  # validate every call before sending any
        check_payload(OcppVersion.V16, *translate.change_configuration(key, value))
    results = []
    for key, value in changes:
        action, payload = translate.change_configuration(key, value)
        response = await call(sessions, station_id, OcppVersion.V16, action, payload, timeout_s)
        status = response.status or "Rejected"
        secret = is_secret_key(key)  # a password: never stored or shown
        if status in TAKEN and not secret:
            async with transaction(sessions.factory) as writer:
                await service.store_value(writer, station_id, key, value)
        results.append(ItemResult(key=key, status=status, value=None if secret else value))
    return results


async def _get_variables(
    sessions: SessionsService,
    station_id: str,
    version: OcppVersion,
    refs: list[VariableRef],
    timeout_s: float | None,
) -> list[ItemResult]:
    action, payload = translate.get_variables(refs)
    response = await call(sessions, station_id, version, action, payload, timeout_s)
    results = translate.variable_results(
        (response.response or {}).get("getVariableResult", []), "attributeValue"
    )
    rows = [
        _ref_of(result).columns() | {"value": result.value}
        for result in results
        if result.status == "Accepted"
    ]
    async with transaction(sessions.factory) as writer:
        await service.store_variables(writer, station_id, rows, described=False)
    return results


async def _set_variables(
    sessions: SessionsService,
    station_id: str,
    version: OcppVersion,
    values: list[tuple[VariableRef, str]],
    timeout_s: float | None,
) -> list[ItemResult]:
    action, payload = translate.set_variables(values)
    response = await call(sessions, station_id, version, action, payload, timeout_s)
    requested = {ref.key: value for ref, value in values}
    results = translate.variable_results(
        (response.response or {}).get("setVariableResult", []), None
    )
    rows = []
    for result in results:
        ref = _ref_of(result)
        if is_secret_variable(ref.component, ref.variable):
            continue  # a password: never stored or shown
        result.value = requested.get(ref.key)
        if result.status in TAKEN and result.value is not None:
            rows.append(ref.columns() | {"value": result.value})
    async with transaction(sessions.factory) as writer:
        await service.store_variables(writer, station_id, rows, described=False)
    return results


def _ref_of(result: ItemResult) -> VariableRef:
    return VariableRef(
        component=result.component or "",
        variable=result.variable or "",
        component_instance=result.component_instance,
        evse_id=result.evse_id,
        connector_id=result.connector_id,
        variable_instance=result.variable_instance,
        attribute_type=result.attribute_type or "Actual",
    )


def chunks(items: list[T], size: int | None) -> list[list[T]]:
    step = size or len(items)
    return [items[start : start + step] for start in range(0, len(items), step)]

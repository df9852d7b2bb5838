"""Limits others put on a station (OCPP 2.x K12/K13): NotifyChargingLimit, ClearedChargingLimit,
and the ChargingStationExternalConstraints profiles a ReportChargingProfiles shows."""

from sqlalchemy import delete
from sqlmodel import col

from csms_ocpp.messages import (
    CLEARED_CHARGING_LIMIT,
    NOTIFY_CHARGING_LIMIT,
    REPORT_CHARGING_PROFILES,
    ClearedChargingLimitRequest,
    NotifyChargingLimitRequest,
    ReportChargingProfilesRequest,
)
from csms_smartcharging.charging.models import ProfileReport, StationLimit
from csms_smartcharging.context import ChargingContext, calls
from csms_smartcharging.profiles.wire import reported_limit_a

EXTERNAL_CONSTRAINTS = "ChargingStationExternalConstraints"


@calls.handles(NOTIFY_CHARGING_LIMIT)
async def on_notify_charging_limit(
    ctx: ChargingContext, payload: NotifyChargingLimitRequest
) -> None:
    """2.x NotifyChargingLimit: an external limit on the station (K12)."""
    limit = payload["chargingLimit"]
    station_limit = StationLimit(
        station_id=ctx.station_id,
        evse_id=int(payload.get("evseId", 0)),
        source=limit["chargingLimitSource"],
        limit_a=reported_limit_a(
            payload.get("chargingSchedule") or [], voltage_v=ctx.settings.voltage_v, phases=3
        ),
        grid_critical=bool(limit.get("isGridCritical", False)),
    )
    await ctx.session.merge(station_limit)
    ctx.dirty = "station_limit"


@calls.handles(CLEARED_CHARGING_LIMIT)
async def on_cleared_charging_limit(
    ctx: ChargingContext, payload: ClearedChargingLimitRequest
) -> None:
    """2.x ClearedChargingLimit: the external limit is gone (K13)."""
    query = delete(StationLimit).where(
        col(StationLimit.station_id) == ctx.station_id,
        col(StationLimit.source) == payload["chargingLimitSource"],
    )
    if "evseId" in payload:
        query = query.where(col(StationLimit.evse_id) == payload["evseId"])
    await ctx.session.exec(query)
    ctx.dirty = "station_limit_cleared"


@calls.handles(REPORT_CHARGING_PROFILES)
async def on_report_charging_profiles(
    ctx: ChargingContext, payload: ReportChargingProfilesRequest
) -> None:
    """2.x ReportChargingProfiles: recorded; a ChargingStationExternalConstraints profile in it
    (set on the station by an external system, never by us: K01.FR.22) caps that EVSE like a
    NotifyChargingLimit until its ClearedChargingLimit."""
    ctx.session.add(
        ProfileReport(
            station_id=ctx.station_id,
            evse_id=payload["evseId"],
            request_id=payload["requestId"],
            source=payload["chargingLimitSource"],
            profiles=payload["chargingProfile"],
        )
    )
    external = [
        profile
        for profile in payload["chargingProfile"]
        if profile.get("chargingProfilePurpose") == EXTERNAL_CONSTRAINTS
    ]
    limits = [
        limit_a
        for profile in external
        if (
            limit_a := reported_limit_a(
                profile.get("chargingSchedule") or [], voltage_v=ctx.settings.voltage_v, phases=3
            )
        )
        is not None
    ]
    if limits:
        await ctx.session.merge(
            StationLimit(
                station_id=ctx.station_id,
                evse_id=int(payload["evseId"]),
                source=payload["chargingLimitSource"],
                limit_a=min(limits),
                grid_critical=False,
            )
        )
        ctx.dirty = "station_limit"

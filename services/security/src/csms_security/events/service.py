"""Recording security events: stored, published on ``csms.security-events``, counted.

``csms_security_events_total{severity,type}`` counts every event; an alert on
``csms_security_events_total{severity="critical"}`` fires on the critical ones
(``type`` is the 2.x name where there is one, so both versions count together).
"""

import logging
from datetime import datetime

from prometheus_client import Counter

from csms_core.events.security import SecurityEventRecorded, SecurityEventRecordedData
from csms_ocpp.messages import SECURITY_EVENT_NOTIFICATION, SecurityEventNotificationRequest
from csms_security.context import SECURITY_EVENTS, SOURCE, CallContext, calls
from csms_security.db import parse_ocpp_time
from csms_security.events.classification import classify, severity_of
from csms_security.events.models import EventSource, SecurityEvent

logger = logging.getLogger(__name__)

security_events = Counter(
    "csms_security_events_total",
    "Security events recorded, by severity and type (2.x name when known)",
    ["severity", "type"],
)

MAX_TECH_INFO = 255
# Vendor-made types are counted under one label: a station must not grow the metric.
OTHER_TYPE = "other"


def security_event(
    station_id: str,
    version: str,
    event_type: str,
    *,
    event_id: str,
    timestamp: datetime,
    tech_info: str | None,
    source: EventSource,
) -> tuple[SecurityEvent, SecurityEventRecorded]:
    """One classified security event and its ``security.event.recorded`` record."""
    classification = classify(event_type, version)
    severity = severity_of(classification, by_csms=source is EventSource.CSMS)
    event = SecurityEvent(
        id=event_id,
        station_id=station_id,
        type=event_type[:50],
        name_2x=classification.name_2x,
        name_16=classification.name_16,
        severity=severity,
        critical=classification.critical,
        source=source,
        ocpp_version=version,
        timestamp=timestamp,
        tech_info=tech_info[:MAX_TECH_INFO] if tech_info else None,
    )
    data = SecurityEventRecordedData(
        type=event.type,
        name_2x=event.name_2x,
        name_16=event.name_16,
        severity=event.severity,
        critical=event.critical,
        source=source,
        timestamp=timestamp,
        tech_info=event.tech_info,
    )
    record = SecurityEventRecorded(
        id=f"{event_id}.recorded",
        source=SOURCE,
        station_id=station_id,
        ocpp_version=version,
        data=data,
    )
    return event, record


def count(event: SecurityEvent) -> None:
    label = event.name_2x if event.name_2x is not None else OTHER_TYPE
    security_events.labels(event.severity.value, label).inc()


def record(
    ctx: CallContext,
    event_type: str,
    *,
    timestamp: datetime,
    tech_info: str | None,
    source: EventSource,
    event_id: str | None = None,
) -> SecurityEvent:
    """Store one security event in the handler's transaction; publish and count it after."""
    event, published = security_event(
        ctx.station_id,
        ctx.version.number,
        event_type,
        event_id=event_id or f"{ctx.envelope.id}.security",
        timestamp=timestamp,
        tech_info=tech_info,
        source=source,
    )
    ctx.session.add(event)
    ctx.events.append((SECURITY_EVENTS, published))
    ctx.after_commit.append(lambda: count(event))
    return event


@calls.handles(SECURITY_EVENT_NOTIFICATION)
async def on_security_event_notification(
    ctx: CallContext, payload: SecurityEventNotificationRequest
) -> None:
    """Every version's SecurityEventNotification (1.6 whitepaper, 2.0.1 A04): the gateway
    has answered it already (the answer carries no decision); we keep it."""
    record(
        ctx,
        payload["type"],
        timestamp=_station_time(ctx, payload.get("timestamp")),
        tech_info=payload.get("techInfo"),
        source=EventSource.STATION,
        event_id=ctx.envelope.id,
    )


def _station_time(ctx: CallContext, timestamp: str | None) -> datetime:
    """When the station says the event happened. A station marked lenient may send a
    malformed time (the gateway lets it through, logged): the event is kept with the time
    it was received rather than lost."""
    if timestamp is None:
        return ctx.received_at
    try:
        return parse_ocpp_time(timestamp)
    except ValueError:
        logger.warning("security event of %s with a malformed time %r", ctx.station_id, timestamp)
        return ctx.received_at

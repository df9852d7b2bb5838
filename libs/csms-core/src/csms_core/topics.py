"""Kafka topics: a public, versioned contract (docs/asyncapi.yaml documents each).

Each topic is bound here, once, to the event models of its records: a producer can
only publish those (``Bus.publish`` is typed by the topic), a consumer decodes a
record into one of them (``topic.decode(delivery)``). A topic is also its name.
"""

from typing import Any, Final

from csms_core.events.audit import AuditRecorded
from csms_core.events.billing import CdrIssued
from csms_core.events.charging import ChargingLimitChanged, SiteLoadMeasured
from csms_core.events.dead_letter import DeadLetter
from csms_core.events.firmware import (
    CampaignStateChanged,
    CampaignStationStateChanged,
    FirmwareEvent,
    FirmwareImageAdded,
    FirmwareStatusReported,
    LogReceived,
    LogStatusChanged,
    PublicationStatusChanged,
)
from csms_core.events.ocpp import (
    CommandResultEvent,
    ConnectionClosed,
    ConnectionOpened,
    ConnectionRefused,
    OcppCall,
    OcppSend,
)
from csms_core.events.security import (
    CertificateInstalled,
    CertificateIssued,
    CertificateRejected,
    SecurityEventRecorded,
    SecurityProfileUpgraded,
)
from csms_core.events.sessions import (
    MeterValues,
    SessionEnded,
    SessionFinalized,
    SessionFlagged,
    SessionLateData,
    SessionStarted,
    SessionUpdated,
)
from csms_core.events.stations import (
    ConnectorStatusChanged,
    DeviceModelReported,
    MonitoringReported,
    StationBooted,
    StationConnected,
    StationDisconnected,
    StationEventReported,
)
from csms_core.events.topic import Topic

OCPP_INBOUND: Final = Topic[OcppCall | OcppSend]("ocpp.inbound", OcppCall, OcppSend)
OCPP_CONNECTIONS: Final = Topic[ConnectionOpened | ConnectionClosed](
    "ocpp.connections", ConnectionOpened, ConnectionClosed
)
OCPP_COMMAND_RESULTS: Final = Topic[CommandResultEvent]("ocpp.command-results", CommandResultEvent)
# Stations a gateway refused (credentials, profile, certificate, unknown id, flooding).
OCPP_REFUSALS: Final = Topic[ConnectionRefused]("ocpp.refusals", ConnectionRefused)
STATION_STATUS: Final = Topic[
    StationBooted
    | StationConnected
    | StationDisconnected
    | ConnectorStatusChanged
    | DeviceModelReported
    | MonitoringReported
    | StationEventReported
](
    "csms.station-status",
    StationBooted,
    StationConnected,
    StationDisconnected,
    ConnectorStatusChanged,
    DeviceModelReported,
    MonitoringReported,
    StationEventReported,
)
SessionEvent = (
    SessionStarted
    | SessionUpdated
    | SessionEnded
    | SessionFinalized
    | SessionFlagged
    | SessionLateData
)
SESSIONS: Final = Topic[SessionEvent](
    "csms.sessions",
    SessionStarted,
    SessionUpdated,
    SessionEnded,
    SessionFinalized,
    SessionFlagged,
    SessionLateData,
)
METER_VALUES: Final = Topic[MeterValues]("csms.meter-values", MeterValues)
CHARGING_LIMITS: Final = Topic[ChargingLimitChanged]("csms.charging-limits", ChargingLimitChanged)
FIRMWARE: Final = Topic[FirmwareEvent](
    "csms.firmware",
    FirmwareImageAdded,
    CampaignStateChanged,
    CampaignStationStateChanged,
    FirmwareStatusReported,
    PublicationStatusChanged,
    LogStatusChanged,
    LogReceived,
)
SecurityServiceEvent = (
    SecurityEventRecorded
    | CertificateIssued
    | CertificateInstalled
    | CertificateRejected
    | SecurityProfileUpgraded
)
# The security service's events: security events of every source, the certificate
# lifecycle, profile upgrades.
SECURITY_EVENTS: Final = Topic[SecurityServiceEvent](
    "csms.security-events",
    SecurityEventRecorded,
    CertificateIssued,
    CertificateInstalled,
    CertificateRejected,
    SecurityProfileUpgraded,
)
# The billing service's charge detail records (OCPI 2.2.1).
CDRS: Final = Topic[CdrIssued]("csms.cdrs", CdrIssued)
# Integrators publish a site's measured non-EV load here.
SITE_LOAD: Final = Topic[SiteLoadMeasured]("csms.site-load", SiteLoadMeasured)
DEAD_LETTER: Final = Topic[DeadLetter]("csms.dead-letter", DeadLetter)
# Who changed what: state-changing REST calls and commands to stations (admins read it).
AUDIT: Final = Topic[AuditRecorded]("csms.audit", AuditRecorded)

ALL: Final = (
    OCPP_INBOUND,
    OCPP_CONNECTIONS,
    OCPP_COMMAND_RESULTS,
    OCPP_REFUSALS,
    STATION_STATUS,
    SESSIONS,
    METER_VALUES,
    CHARGING_LIMITS,
    FIRMWARE,
    SECURITY_EVENTS,
    SITE_LOAD,
    CDRS,
    AUDIT,
    DEAD_LETTER,
)
BY_NAME: Final[dict[str, Topic[Any]]] = {topic.name: topic for topic in ALL}

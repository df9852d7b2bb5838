"""Kafka topic names: a public, versioned contract (docs/asyncapi.yaml documents each)."""

from typing import Final

OCPP_INBOUND: Final = "ocpp.inbound"
OCPP_CONNECTIONS: Final = "ocpp.connections"
OCPP_COMMAND_RESULTS: Final = "ocpp.command-results"
STATION_STATUS: Final = "csms.station-status"
SESSIONS: Final = "csms.sessions"
METER_VALUES: Final = "csms.meter-values"
CHARGING_LIMITS: Final = "csms.charging-limits"
FIRMWARE: Final = "csms.firmware"
SITE_LOAD: Final = "csms.site-load"  # integrators publish a site's measured non-EV load
CDRS: Final = "csms.cdrs"  # the billing service's charge detail records (OCPI 2.2.1)
DEAD_LETTER: Final = "csms.dead-letter"

ALL: Final = (
    OCPP_INBOUND,
    OCPP_CONNECTIONS,
    OCPP_COMMAND_RESULTS,
    STATION_STATUS,
    SESSIONS,
    METER_VALUES,
    CHARGING_LIMITS,
    FIRMWARE,
    SITE_LOAD,
    CDRS,
    DEAD_LETTER,
)

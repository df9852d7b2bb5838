"""Kafka topic names: a public, versioned contract (docs/asyncapi.yaml documents each)."""

from typing import Final

OCPP_INBOUND: Final = "ocpp.inbound"
OCPP_CONNECTIONS: Final = "ocpp.connections"
OCPP_COMMAND_RESULTS: Final = "ocpp.command-results"
STATION_STATUS: Final = "csms.station-status"
DEAD_LETTER: Final = "csms.dead-letter"

ALL: Final = (OCPP_INBOUND, OCPP_CONNECTIONS, OCPP_COMMAND_RESULTS, STATION_STATUS, DEAD_LETTER)

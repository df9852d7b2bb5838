"""Answers to every CSMS-initiated CALL, per OCPP version.

A request is first checked against its official schema (a bad one gets the CALLERROR
the spec names). Actions the station implements have a handler in ``v16`` or ``v2``;
any other action the version defines gets a schema-valid rejection built from its
response schema (``rejection.py``); an action the version does not define gets
CALLERROR NotImplemented (1.6 OCPP-J §4.2.3, 2.0.1 Part 4 §4.3).
"""

from typing import TYPE_CHECKING

from csms_ocpp import Call, CallError, ErrorCode, error_code
from csms_ocpp.actions import is_station_initiated
from csms_ocpp.frames import JsonObject
from csms_ocpp.schemas import has_schema, validate
from csms_simulator.handlers import v2, v16
from csms_simulator.handlers.rejection import rejection

if TYPE_CHECKING:
    from csms_simulator.station import Station


def dispatch(station: "Station", call: Call) -> JsonObject | CallError:
    version = station.version
    csms_may_send = call.action == "DataTransfer" or not is_station_initiated(version, call.action)
    if not has_schema(version, call.action) or not csms_may_send:
        return CallError(
            call.message_id,
            error_code(ErrorCode.NOT_IMPLEMENTED, version),
            f"{call.action} is not a CSMS-initiated OCPP {version.number} message",
        )
    violation = validate(version, call.action, call.payload)
    if violation is not None:
        return CallError(
            call.message_id,
            error_code(violation.code, version),
            violation.description,
            violation.details,
        )
    table = v2.HANDLERS if version.is_2x else v16.HANDLERS
    handler = table.get(call.action)
    if handler is None:
        return rejection(version, call.action)
    return handler(station, call.payload)

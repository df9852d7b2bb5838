"""Version-neutral commands → the OCPP action and payload a station of each version expects."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from csms_ocpp import OcppVersion


class Untranslatable(ValueError):
    """The command cannot be said in the station's OCPP version."""


class ResetCommand(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"type": "hard"}]})

    type: Literal["hard", "soft"] = Field(
        description="hard: now (1.6 Hard, 2.x Immediate); soft: when idle (1.6 Soft, 2.x OnIdle)"
    )
    evse_id: int | None = Field(default=None, ge=1, description="2.x only: reset one EVSE")


class ChangeAvailabilityCommand(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"operative": False, "evse_id": 1}]}
    )

    operative: bool
    evse_id: int | None = Field(default=None, ge=0, description="absent or 0: the whole station")
    connector_id: int | None = Field(default=None, ge=1, description="2.x only, with evse_id")


class TriggerMessageCommand(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"message": "StatusNotification"}]}
    )

    message: str = Field(
        min_length=1,
        description="the OCPP message to trigger: BootNotification, Heartbeat, "
        "StatusNotification, MeterValues, FirmwareStatusNotification, "
        "(1.6) DiagnosticsStatusNotification, (2.x) LogStatusNotification, TransactionEvent, ...",
    )
    evse_id: int | None = Field(default=None, ge=1)
    connector_id: int | None = Field(default=None, ge=1, description="2.x only, with evse_id")


class RawCommand(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"action": "GetVariables", "payload": {"getVariableData": []}}]
        },
    )

    action: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict)


def _evse(evse_id: int | None, connector_id: int | None) -> dict[str, Any]:
    """The 2.x ``evse`` field (EVSEType), or nothing."""
    if evse_id is None:
        if connector_id is not None:
            raise Untranslatable("connector_id needs evse_id")
        return {}
    evse: dict[str, Any] = {"id": evse_id}
    if connector_id is not None:
        evse["connectorId"] = connector_id
    return {"evse": evse}


def _no_connector_in_v16(connector_id: int | None) -> None:
    # A 1.6 connector N is stored as EVSE N, connector 1 (see stations/handlers), so
    # connector_id 1 names that same connector; any other has no 1.6 equivalent.
    if connector_id not in (None, 1):
        raise Untranslatable(
            "OCPP 1.6 addresses connectors by evse_id alone; connector_id must be 1 or omitted"
        )


def reset(command: ResetCommand, version: OcppVersion) -> tuple[str, dict[str, Any]]:
    if not version.is_2x:
        if command.evse_id is not None:
            raise Untranslatable("OCPP 1.6 resets the whole station only; omit evse_id")
        return "Reset", {"type": "Hard" if command.type == "hard" else "Soft"}
    payload: dict[str, Any] = {"type": "Immediate" if command.type == "hard" else "OnIdle"}
    if command.evse_id is not None:
        payload["evseId"] = command.evse_id
    return "Reset", payload


def change_availability(
    command: ChangeAvailabilityCommand, version: OcppVersion
) -> tuple[str, dict[str, Any]]:
    status = "Operative" if command.operative else "Inoperative"
    if not version.is_2x:
        _no_connector_in_v16(command.connector_id)
        return "ChangeAvailability", {"connectorId": command.evse_id or 0, "type": status}
    evse_id = command.evse_id or None  # 2.x: no evse means the whole station (evse 0 in 1.6)
    return "ChangeAvailability", {
        "operationalStatus": status,
        **_evse(evse_id, command.connector_id),
    }


def trigger_message(
    command: TriggerMessageCommand, version: OcppVersion
) -> tuple[str, dict[str, Any]]:
    if not version.is_2x:
        _no_connector_in_v16(command.connector_id)
        payload: dict[str, Any] = {"requestedMessage": command.message}
        if command.evse_id is not None:
            payload["connectorId"] = command.evse_id
        return "TriggerMessage", payload
    return "TriggerMessage", {
        "requestedMessage": command.message,
        **_evse(command.evse_id, command.connector_id),
    }


def raw(command: RawCommand, version: OcppVersion) -> tuple[str, dict[str, Any]]:
    return command.action, command.payload

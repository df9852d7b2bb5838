"""``csms.audit``: who changed what, over REST or by a command to a station (issue 14).

Every state-changing REST call (POST, PUT, PATCH, DELETE under ``/api/v1``, refused ones
included) and every command a service sent to a station. Never a secret: no request
body, no command payload, no token. The record's key (the envelope's ``station_id``) is the
station concerned, empty for what concerns none (an API key, a tariff).
"""

from typing import Literal

from pydantic import Field

from csms_core.envelope import Event
from csms_core.events.data import EventData, IsoTime

ActorKind = Literal["api-key", "jwt", "service", "anonymous"]
AuditKind = Literal["rest", "command"]


class AuditRecordedData(EventData):
    """One audited action and its outcome."""

    kind: AuditKind = Field(description="rest: a REST call; command: a CALL sent to a station.")
    actor: str = Field(
        examples=["api-key:3f9c2a7b1d04", "jwt:alice", "service:smartcharging", "anonymous"],
        description="Who: an API key's id, a token's subject, a service acting on its own, "
        "or nobody authenticated (a refused call).",
    )
    actor_kind: ActorKind
    action: str = Field(
        examples=["POST /api/v1/stations/{station_id}/commands/reset", "Reset"],
        description="rest: the method and route; command: the OCPP action.",
    )
    path: str | None = Field(default=None, description="rest: the path called.")
    station_id: str | None = Field(default=None, description="The station concerned, if one.")
    outcome: str = Field(
        examples=["204", "403", "result", "timeout"],
        description="rest: the HTTP status; command: result, error, timeout, offline, "
        "rejected or invalid_response.",
    )
    detail: str | None = Field(
        default=None,
        description="command: the command id and any error code; rest: nothing secret.",
    )
    source: str = Field(examples=["sessions"], description="The service that acted.")
    client: str | None = Field(default=None, description="rest: the caller's address.")
    at: IsoTime = Field(description="When it was done.")


class AuditRecorded(Event[AuditRecordedData]):
    type: Literal["audit.recorded"] = "audit.recorded"

"""``csms.sessions`` and ``csms.meter-values``: version-neutral sessions and samples."""

from typing import ClassVar, Literal

from pydantic import Field

from csms_core.envelope import Event
from csms_core.events.data import EventData, IsoTime, JsonObject, OcppTime, SparseEventData


class IdTokenRef(SparseEventData):
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"group_id"})

    id_token: str
    type: str = Field(description="The 2.x IdTokenEnumType, or idTag for OCPP 1.6.")
    group_id: str | None = Field(
        default=None,
        description="The token's group as the CSMS holds it (groupIdToken / parentIdTag), "
        "when it knows the token and gives it one: drivers' tariffs apply by it.",
    )


class SessionRef(EventData):
    session_id: str
    transaction_id: str = Field(max_length=36, description="The OCPP transaction id.")
    evse_id: int | None = Field(ge=0, description="2.x evseId (1.6 connectorId); null: unknown.")


class SessionStartedData(SessionRef):
    station_id: str
    connector_id: int | None
    id_token: IdTokenRef | None
    started_at: OcppTime
    meter_start_wh: float | None


class SessionStarted(Event[SessionStartedData]):
    type: Literal["session.started"] = "session.started"


class SessionUpdatedData(SessionRef, SparseEventData):
    omitted_when_none: ClassVar[frozenset[str]] = frozenset(
        {"current_a", "soc_percent", "charging_state", "id_token"}
    )

    energy_wh: float | None
    power_w: float | None
    updated_at: OcppTime
    current_a: float | None = None
    soc_percent: float | None = None
    charging_state: str | None = Field(
        default=None,
        description="2.x chargingState (Charging, SuspendedEV, ...); billing reads it. The "
        "sessions service does not publish it yet.",
    )
    id_token: IdTokenRef | None = Field(
        default=None,
        description="Who charges, on the update that first names them: a token that came "
        "after the start (a 2.x TransactionEvent Updated with an idToken, e.g. cable plugged "
        "in first). Billing prices the session with the driver's tariff from then on.",
    )


class SessionUpdated(Event[SessionUpdatedData]):
    type: Literal["session.updated"] = "session.updated"


class SessionEndedData(SessionRef, SparseEventData):
    """The figures of an ended session (``session.ended``, and ``session.finalized`` when
    its start arrived after its end)."""

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"started_at", "id_token"})

    ended_at: OcppTime
    stop_reason: str = Field(examples=["ev_disconnected"], description="Version-neutral.")
    ocpp_stop_reason: str | None
    energy_wh: float | None
    duration_s: float = Field(ge=0)
    meter_stop_wh: float | None
    started_at: OcppTime | None = None
    meter_start_wh: float | None = None
    final: bool = Field(default=True, description="False only while the start is missing.")
    flags: list[str] = Field(default_factory=list, examples=[["late_data"]])
    id_token: IdTokenRef | None = Field(
        default=None,
        description="Who charged, when known by the end (a token may come after the start, "
        "or with a start that arrived late).",
    )


class SessionEnded(Event[SessionEndedData]):
    type: Literal["session.ended"] = "session.ended"


class SessionFinalized(Event[SessionEndedData]):
    """The start of an ended session arrived after its end: its figures are final now."""

    type: Literal["session.finalized"] = "session.finalized"


class SessionFlaggedData(SessionRef):
    reason: str = Field(examples=["late_data"], description="Why the session was flagged.")
    detail: str
    flags: list[str] = Field(description="Every flag the session has now.")


class SessionFlagged(Event[SessionFlaggedData]):
    type: Literal["session.flagged"] = "session.flagged"


class SessionLateDataData(SessionRef):
    """A message for a session after it had ended: stored as sent, never applied."""

    action: str = Field(examples=["TransactionEvent"])
    event_type: str | None
    seq_no: int | None
    disposition: str
    timestamp: OcppTime | None
    received_at: OcppTime
    samples: int = Field(ge=0)
    late_messages: int = Field(ge=0)


class SessionLateData(Event[SessionLateDataData]):
    type: Literal["session.late_data"] = "session.late_data"


class MeterSample(SparseEventData):
    omitted_when_none: ClassVar[frozenset[str]] = frozenset(
        {"phase", "location", "context", "signed"}
    )

    timestamp: IsoTime
    measurand: str = Field(examples=["Energy.Active.Import.Register"])
    value: float | None = Field(description="In `unit`; null when the station sent no number.")
    unit: str | None
    phase: str | None = None
    location: str | None = None
    context: str | None = None
    signed: JsonObject | None = Field(
        default=None,
        description="The station's signature over the reading as sent (2.x signedMeterValue; "
        "1.6 SignedData: format, value), carried into the CDR.",
    )


class MeterValuesData(SparseEventData):
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"session_id", "transaction_id"})

    evse_id: int | None
    samples: list[MeterSample] = Field(min_length=1)
    late: bool = Field(default=False, description="Sent after its session had ended.")
    session_id: str | None = None
    transaction_id: str | None = None


class MeterValues(Event[MeterValuesData]):
    type: Literal["meter.values"] = "meter.values"

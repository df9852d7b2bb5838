"""Tables ``sessions.station_configuration``, ``device_model_variable``, ``report_request``."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, utc_now


class StationConfiguration(SQLModel, table=True):
    """One OCPP 1.6 configuration key of a station, as it last reported or accepted it."""

    __tablename__ = "station_configuration"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    key: str = Field(primary_key=True, max_length=50)
    value: str | None = Field(default=None, max_length=500)
    readonly: bool = False
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


@dataclass(frozen=True, slots=True)
class VariableRef:
    """What names one attribute of a 2.x device model variable (OCPP 2.0.1 Part 1 §4)."""

    component: str
    variable: str
    component_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    variable_instance: str | None = None
    attribute_type: str = "Actual"

    @property
    def key(self) -> str:
        """The tuple as one string: NULLs never collide in a unique index, this does."""
        return json.dumps(
            [
                self.component,
                self.component_instance,
                self.evse_id,
                self.connector_id,
                self.variable,
                self.variable_instance,
                self.attribute_type,
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_ocpp(
        cls, component: dict[str, Any], variable: dict[str, Any], attribute_type: str | None
    ) -> "VariableRef":
        evse = component.get("evse") or {}
        return cls(
            component=component["name"],
            component_instance=component.get("instance"),
            evse_id=evse.get("id"),
            connector_id=evse.get("connectorId"),
            variable=variable["name"],
            variable_instance=variable.get("instance"),
            attribute_type=attribute_type or "Actual",
        )

    def component_ocpp(self) -> dict[str, Any]:
        component: dict[str, Any] = {"name": self.component}
        if self.component_instance is not None:
            component["instance"] = self.component_instance
        if self.evse_id is not None:
            component["evse"] = {"id": self.evse_id}
            if self.connector_id is not None:
                component["evse"]["connectorId"] = self.connector_id
        return component

    def variable_ocpp(self) -> dict[str, Any]:
        variable: dict[str, Any] = {"name": self.variable}
        if self.variable_instance is not None:
            variable["instance"] = self.variable_instance
        return variable

    def columns(self) -> dict[str, Any]:
        return {
            "variable_key": self.key,
            "component": self.component,
            "component_instance": self.component_instance,
            "evse_id": self.evse_id,
            "connector_id": self.connector_id,
            "variable": self.variable,
            "variable_instance": self.variable_instance,
            "attribute_type": self.attribute_type,
        }


class DeviceModelVariable(SQLModel, table=True):
    """One attribute of one variable of a 2.x station's device model (NotifyReport,
    GetVariables, SetVariables); unique per station on the identifying tuple (``variable_key``)."""

    __tablename__ = "device_model_variable"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    variable_key: str = Field(primary_key=True, max_length=400)
    component: str = Field(max_length=50)
    component_instance: str | None = Field(default=None, max_length=50)
    evse_id: int | None = None
    connector_id: int | None = None
    variable: str = Field(max_length=50)
    variable_instance: str | None = Field(default=None, max_length=50)
    attribute_type: str = Field(default="Actual", max_length=10)
    value: str | None = Field(default=None, max_length=2500)
    mutability: str | None = Field(default=None, max_length=10)
    data_type: str | None = Field(default=None, max_length=20)
    unit: str | None = Field(default=None, max_length=16)
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: str | None = Field(default=None, max_length=1000)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)

    @property
    def ref(self) -> VariableRef:
        return VariableRef(
            component=self.component,
            variable=self.variable,
            component_instance=self.component_instance,
            evse_id=self.evse_id,
            connector_id=self.connector_id,
            variable_instance=self.variable_instance,
            attribute_type=self.attribute_type,
        )


class ReportState(StrEnum):
    """Where a report stands: complete only when every part 0..last arrived."""

    REQUESTED = "requested"  # sent, no answer yet
    REJECTED = "rejected"  # the station refused it (Rejected, NotSupported)
    EMPTY = "empty"  # EmptyResultSet: nothing to report
    PENDING = "pending"  # Accepted, no part yet
    RECEIVING = "receiving"  # parts arriving, the last one not yet
    INCOMPLETE = "incomplete"  # parts are missing (below the last, or none came for long)
    COMPLETE = "complete"


class ReportRequest(SQLModel, table=True):
    """A GetBaseReport/GetReport we sent; its auto-increment id is the requestId on the wire."""

    __tablename__ = "report_request"
    __table_args__ = {"schema": SCHEMA}

    request_id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(max_length=48, index=True)
    action: str = Field(max_length=20)
    request: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    requested_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    # The station's answer (Accepted, Rejected, NotSupported, EmptyResultSet).
    status: str | None = Field(default=None, max_length=20)
    # Distinct parts (seqNo) received, and the seqNo of the one marked last (tbc false).
    parts_received: int = 0
    seq_nos: list[int] = Field(default_factory=list, sa_type=JSON)
    last_seq_no: int | None = None
    last_part_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # When every part from 0 to the last had arrived.
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The request this one repeats (POST .../reports/{id}/repeat).
    repeat_of: int | None = None

    def receive_part(self, seq_no: int, *, last: bool, at: datetime) -> None:
        """One NotifyReport part (OCPP 2.0.1 B07/B08: seqNo from 0, tbc false on the last)."""
        # A new list: SQLAlchemy does not see a JSON list changed in place.
        self.seq_nos = sorted({*self.seq_nos, seq_no})
        self.parts_received = len(self.seq_nos)
        self.last_part_at = at
        if last and (self.last_seq_no is None or seq_no < self.last_seq_no):
            self.last_seq_no = seq_no
        if (
            self.completed_at is None
            and self.missing_seq_nos() == []
            and self.last_seq_no is not None
        ):
            self.completed_at = at

    def missing_seq_nos(self) -> list[int]:
        """The parts not received below the last one (or below the highest, until it came)."""
        top = self.last_seq_no if self.last_seq_no is not None else max(self.seq_nos, default=-1)
        return sorted(set(range(top + 1)) - set(self.seq_nos))

    def state(self, now: datetime, part_timeout: timedelta) -> ReportState:
        if self.status is None:
            return ReportState.REQUESTED
        if self.status == "EmptyResultSet":
            return ReportState.EMPTY
        if self.status != "Accepted":
            return ReportState.REJECTED
        if self.completed_at is not None:
            return ReportState.COMPLETE
        waited = now - (self.last_part_at or self.requested_at)
        if self.last_seq_no is not None or waited > part_timeout:
            return ReportState.INCOMPLETE
        return ReportState.RECEIVING if self.seq_nos else ReportState.PENDING

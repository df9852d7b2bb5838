"""Tables ``sessions.station_configuration``, ``device_model_variable``, ``report_request``."""

import json
from dataclasses import dataclass
from datetime import datetime
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
    parts_received: int = 0
    # When the last part (tbc false) arrived.
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

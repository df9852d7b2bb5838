"""Tables ``sessions.variable_monitor``, ``monitoring_setting`` and ``station_event``."""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from csms_sessions.configuration.models import VariableRef
from csms_sessions.db import SCHEMA, UtcDateTime, utc_now


class VariableMonitor(SQLModel, table=True):
    """One monitor a 2.x station holds, by the id the station gave it (OCPP 2.0.1 N04):
    as its NotifyMonitoringReport described it or its SetVariableMonitoring accepted it."""

    __tablename__ = "variable_monitor"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    monitor_id: int = Field(primary_key=True)
    component: str = Field(max_length=50)
    component_instance: str | None = Field(default=None, max_length=50)
    evse_id: int | None = None
    connector_id: int | None = None
    variable: str = Field(max_length=50)
    variable_instance: str | None = Field(default=None, max_length=50)
    type: str = Field(max_length=30)
    value: float
    severity: int
    transaction: bool = False
    # 2.1 VariableMonitoringType: HardWiredMonitor, PreconfiguredMonitor, CustomMonitor.
    event_notification_type: str | None = Field(default=None, max_length=30)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class MonitoringSetting(SQLModel, table=True):
    """The monitoring base and level a station last accepted (SetMonitoringBase/Level)."""

    __tablename__ = "monitoring_setting"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    monitoring_base: str | None = Field(default=None, max_length=20)
    monitoring_level: int | None = None
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class StationEvent(SQLModel, table=True):
    """One event a 2.x station notified (NotifyEvent eventData, OCPP 2.0.1 N07/N08): an
    alert of a monitor, its clearing, or a delta or periodic reading."""

    __tablename__ = "station_event"
    __table_args__ = (
        # A station that sends a NotifyEvent again (no answer came) stores it once.
        UniqueConstraint("station_id", "event_id", "timestamp"),
        {"schema": SCHEMA},
    )

    id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(max_length=48, index=True)
    event_id: int
    timestamp: datetime = Field(sa_type=UtcDateTime)
    trigger: str = Field(max_length=20)
    event_notification_type: str = Field(max_length=30)
    component: str = Field(max_length=50)
    component_instance: str | None = Field(default=None, max_length=50)
    evse_id: int | None = None
    connector_id: int | None = None
    variable: str = Field(max_length=50)
    variable_instance: str | None = Field(default=None, max_length=50)
    actual_value: str = Field(max_length=2500)
    cleared: bool = False
    cause: int | None = None
    tech_code: str | None = Field(default=None, max_length=50)
    tech_info: str | None = Field(default=None, max_length=500)
    transaction_id: str | None = Field(default=None, max_length=36)
    variable_monitoring_id: int | None = None
    severity: int | None = None
    received_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


def ref_columns(ref: VariableRef) -> dict[str, str | int | None]:
    """The component and variable columns of a monitor or event (no attribute type)."""
    return {
        "component": ref.component,
        "component_instance": ref.component_instance,
        "evse_id": ref.evse_id,
        "connector_id": ref.connector_id,
        "variable": ref.variable,
        "variable_instance": ref.variable_instance,
    }

"""Version-neutral monitoring requests ⇄ OCPP 2.0.1/2.1 N02-N05 messages (none is in 1.6)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from csms_ocpp import OcppVersion
from csms_sessions.commands.translate import Untranslatable
from csms_sessions.configuration.models import VariableRef
from csms_sessions.configuration.translate import ComponentVariable, component_variable
from csms_sessions.db import INT32_MAX

# 2.1 adds TargetDelta and TargetDeltaRelative (the official schema refuses them in 2.0.1).
MonitorType = Literal[
    "UpperThreshold",
    "LowerThreshold",
    "Delta",
    "Periodic",
    "PeriodicClockAligned",
    "TargetDelta",
    "TargetDeltaRelative",
]
MonitoringCriterion = Literal["ThresholdMonitoring", "DeltaMonitoring", "PeriodicMonitoring"]
MonitoringBase = Literal["All", "FactoryDefault", "HardWiredOnly"]
# Monitor ids as the database keeps them (a 32-bit integer, as OCPP's integers in practice).
MAX_ID = INT32_MAX
# OCPP 2.0.1 Part 2 SetMonitoringDataType.severity: 0 (Danger) to 9 (Debug).
Severity = Field(ge=0, le=9, examples=[5], description="0 Danger … 5 Alert … 9 Debug")


def only_2x(version: OcppVersion, action: str) -> None:
    if not version.is_2x:
        raise Untranslatable(f"{action} is not in OCPP 1.6 (2.0.1 block N)")


class MonitoredVariable(BaseModel):
    """The component and variable a monitor watches."""

    model_config = ConfigDict(extra="forbid")

    component: str = Field(min_length=1, max_length=50, examples=["EVSE"])
    component_instance: str | None = Field(default=None, min_length=1, max_length=50)
    evse_id: int | None = Field(default=None, ge=0, examples=[1])
    connector_id: int | None = Field(default=None, ge=1)
    variable: str = Field(min_length=1, max_length=50, examples=["Power"])
    variable_instance: str | None = Field(default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _connector_needs_evse(self) -> "MonitoredVariable":
        if self.connector_id is not None and self.evse_id is None:
            raise ValueError("connector_id needs evse_id")
        return self

    @property
    def ref(self) -> VariableRef:
        return VariableRef(
            component=self.component,
            variable=self.variable,
            component_instance=self.component_instance,
            evse_id=self.evse_id,
            connector_id=self.connector_id,
            variable_instance=self.variable_instance,
        )


class MonitorSpec(MonitoredVariable):
    """One monitor to set (SetMonitoringDataType); ``id`` replaces that existing monitor."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "component": "EVSE",
                    "evse_id": 1,
                    "variable": "Power",
                    "type": "UpperThreshold",
                    "value": 22000,
                    "severity": 4,
                }
            ]
        },
    )

    id: int | None = Field(
        default=None, ge=0, le=MAX_ID, description="replace this monitor of the station"
    )
    type: MonitorType
    value: float = Field(description="threshold or delta; the interval in seconds if periodic")
    severity: int = Severity
    transaction: bool = Field(
        default=False, strict=True, description="active only during a transaction"
    )

    @model_validator(mode="after")
    def _periodic_interval(self) -> "MonitorSpec":
        if self.type.startswith("Periodic") and self.value <= 0:
            raise ValueError("a periodic monitor's value is its interval in seconds: above 0")
        return self


class SetMonitors(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monitors: list[MonitorSpec] = Field(min_length=1, max_length=500)


class ClearMonitors(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ids": [3, 4]}]})

    ids: list[int] = Field(min_length=1, max_length=500, description="the station's monitor ids")

    @model_validator(mode="after")
    def _unique(self) -> "ClearMonitors":
        if len(set(self.ids)) != len(self.ids) or not all(0 <= i <= MAX_ID for i in self.ids):
            raise ValueError(f"name each monitor id (0 to {MAX_ID}) once")
        return self


class MonitoringReportCommand(BaseModel):
    """GetMonitoringReport: by criteria and/or components and variables; neither: all."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"criteria": ["ThresholdMonitoring"]}, {}]},
    )

    criteria: list[MonitoringCriterion] | None = Field(default=None, min_length=1, max_length=3)
    component_variables: list[ComponentVariable] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "MonitoringReportCommand":
        if self.criteria is not None and len(set(self.criteria)) != len(self.criteria):
            raise ValueError("name each criterion once")
        return self


class MonitoringBaseCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monitoring_base: MonitoringBase = Field(examples=["All"])


class MonitoringLevelCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity: int = Field(
        ge=0, le=9, examples=[5], description="events of this severity and higher (0..9)"
    )


class StatusInfo(BaseModel):
    """OCPP 2.x StatusInfoType."""

    reason_code: str
    additional_info: str | None = None

    @classmethod
    def of(cls, info: dict[str, Any] | None) -> "StatusInfo | None":
        if not info:
            return None
        return cls(reason_code=info["reasonCode"], additional_info=info.get("additionalInfo"))


class MonitorResult(MonitoredVariable):
    """What the station said of one monitor to set."""

    model_config = ConfigDict(extra="ignore")

    id: int | None = Field(default=None, description="the monitor's id, when Accepted")
    type: str
    severity: int
    status: str = Field(examples=["Accepted", "UnknownVariable", "Rejected", "Duplicate"])
    status_info: StatusInfo | None = None


class MonitorResults(BaseModel):
    items: list[MonitorResult]


class ClearResult(BaseModel):
    id: int
    status: str = Field(examples=["Accepted", "Rejected", "NotFound"])
    status_info: StatusInfo | None = None


class ClearResults(BaseModel):
    items: list[ClearResult]


def set_variable_monitoring(monitors: list[MonitorSpec]) -> tuple[str, dict[str, Any]]:
    """OCPP 2.0.1 N04 SetVariableMonitoring."""
    data = []
    for monitor in monitors:
        ref = monitor.ref
        entry: dict[str, Any] = {
            "value": monitor.value,
            "type": monitor.type,
            "severity": monitor.severity,
            "transaction": monitor.transaction,
            "component": ref.component_ocpp(),
            "variable": ref.variable_ocpp(),
        }
        if monitor.id is not None:
            entry["id"] = monitor.id
        data.append(entry)
    return "SetVariableMonitoring", {"setMonitoringData": data}


def monitor_results(results: list[dict[str, Any]]) -> list[MonitorResult]:
    """SetMonitoringResultType entries as items."""
    items = []
    for result in results:
        ref = VariableRef.from_ocpp(result["component"], result["variable"], None)
        items.append(
            MonitorResult(
                component=ref.component,
                component_instance=ref.component_instance,
                evse_id=ref.evse_id,
                connector_id=ref.connector_id,
                variable=ref.variable,
                variable_instance=ref.variable_instance,
                id=result.get("id"),
                type=result["type"],
                severity=result["severity"],
                status=result["status"],
                status_info=StatusInfo.of(result.get("statusInfo")),
            )
        )
    return items


def clear_variable_monitoring(ids: list[int]) -> tuple[str, dict[str, Any]]:
    """OCPP 2.0.1 N06 ClearVariableMonitoring."""
    return "ClearVariableMonitoring", {"id": ids}


def clear_results(results: list[dict[str, Any]]) -> list[ClearResult]:
    return [
        ClearResult(
            id=result["id"],
            status=result["status"],
            status_info=StatusInfo.of(result.get("statusInfo")),
        )
        for result in results
    ]


def get_monitoring_report(command: MonitoringReportCommand) -> dict[str, Any]:
    """OCPP 2.0.1 N02 GetMonitoringReport, without its requestId (allocated when sent)."""
    request: dict[str, Any] = {}
    if command.criteria:
        request["monitoringCriteria"] = command.criteria
    if command.component_variables:
        request["componentVariable"] = [component_variable(c) for c in command.component_variables]
    return request

"""Version-neutral configuration requests ⇄ OCPP 1.6 configuration keys and the 2.x device model.

An item names a 1.6 configuration ``key`` or a 2.x ``component`` + ``variable``
(OCPP 2.0.1 Part 1 §4: component instance and EVSE, variable instance, attribute type).
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from csms_ocpp import OcppVersion
from csms_sessions.commands.translate import Untranslatable
from csms_sessions.configuration.models import VariableRef

AttributeType = Literal["Actual", "Target", "MinSet", "MaxSet"]
ReportBase = Literal["ConfigurationInventory", "FullInventory", "SummaryInventory"]
ComponentCriterion = Literal["Active", "Available", "Enabled", "Problem"]
# 1.6 GetConfiguration answers an unknown key in ``unknownKey``; we say it as 2.x does.
UNKNOWN_KEY = "UnknownVariable"


class ConfigurationRef(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"key": "HeartbeatInterval"},
                {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"},
            ]
        },
    )

    key: str | None = Field(default=None, min_length=1, max_length=50, description="1.6 key")
    component: str | None = Field(default=None, min_length=1, max_length=50, description="2.x")
    component_instance: str | None = Field(default=None, min_length=1, max_length=50)
    evse_id: int | None = Field(default=None, ge=0)
    connector_id: int | None = Field(default=None, ge=1)
    variable: str | None = Field(default=None, min_length=1, max_length=50, description="2.x")
    variable_instance: str | None = Field(default=None, min_length=1, max_length=50)
    attribute_type: AttributeType | None = None

    @model_validator(mode="after")
    def _key_or_component_variable(self) -> "ConfigurationRef":
        if (self.key is None) == (self.variable is None):
            raise ValueError("name either a key (OCPP 1.6) or a component and variable (2.x)")
        if (self.component is None) != (self.variable is None):
            raise ValueError("a variable belongs to a component: give both")
        if self.connector_id is not None and self.evse_id is None:
            raise ValueError("connector_id needs evse_id")
        return self

    def key_in(self, version: OcppVersion) -> str:
        """The 1.6 key; Untranslatable for a 2.x station or a component/variable."""
        if version.is_2x or self.key is None:
            raise Untranslatable(
                "OCPP 2.x names a variable by component and variable"
                if version.is_2x
                else "OCPP 1.6 names configuration by key; give key"
            )
        return self.key

    def ref_in(self, version: OcppVersion) -> VariableRef:
        """The 2.x variable attribute; Untranslatable for a 1.6 station or a key."""
        if not version.is_2x or self.component is None or self.variable is None:
            raise Untranslatable(
                "OCPP 1.6 names configuration by key; give key"
                if not version.is_2x
                else "OCPP 2.x names a variable by component and variable"
            )
        return VariableRef(
            component=self.component,
            variable=self.variable,
            component_instance=self.component_instance,
            evse_id=self.evse_id,
            connector_id=self.connector_id,
            variable_instance=self.variable_instance,
            attribute_type=self.attribute_type or "Actual",
        )


class ConfigurationValue(ConfigurationRef):
    value: str = Field(max_length=2500, description="1.6: up to 500 characters, 2.x: 1000")


class ConfigurationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ConfigurationRef] = Field(min_length=1, max_length=500)


class ConfigurationChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"items": [{"key": "HeartbeatInterval", "value": "60"}]}]},
    )

    items: list[ConfigurationValue] = Field(min_length=1, max_length=500)


class RefreshCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    report_base: ReportBase = Field(
        default="FullInventory", description="2.x GetBaseReport; 1.6 always reads every key"
    )


class ComponentVariable(BaseModel):
    """A component, or one of its variables, that a custom report asks for (2.x)."""

    model_config = ConfigDict(extra="forbid")

    component: str = Field(min_length=1, max_length=50)
    component_instance: str | None = Field(default=None, min_length=1, max_length=50)
    evse_id: int | None = Field(default=None, ge=0)
    connector_id: int | None = Field(default=None, ge=1)
    variable: str | None = Field(default=None, min_length=1, max_length=50)
    variable_instance: str | None = Field(default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _connector_needs_evse(self) -> "ComponentVariable":
        if self.connector_id is not None and self.evse_id is None:
            raise ValueError("connector_id needs evse_id")
        if self.variable_instance is not None and self.variable is None:
            raise ValueError("variable_instance needs variable")
        return self


class CustomReportCommand(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"component_criteria": ["Problem"]}]},
    )

    component_criteria: list[ComponentCriterion] | None = Field(default=None, min_length=1)
    component_variables: list[ComponentVariable] | None = Field(default=None, min_length=1)


class ItemResult(BaseModel):
    """What the station said of one item."""

    key: str | None = None
    component: str | None = None
    component_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    variable: str | None = None
    variable_instance: str | None = None
    attribute_type: str | None = None
    status: str = Field(examples=["Accepted", "Rejected", "RebootRequired", "UnknownVariable"])
    value: str | None = None
    readonly: bool | None = Field(default=None, description="1.6 GetConfiguration only")
    status_info: dict[str, Any] | None = Field(default=None, description="2.x StatusInfoType")

    @classmethod
    def of_ref(cls, ref: VariableRef, status: str, **fields: Any) -> "ItemResult":
        return cls(
            component=ref.component,
            component_instance=ref.component_instance,
            evse_id=ref.evse_id,
            connector_id=ref.connector_id,
            variable=ref.variable,
            variable_instance=ref.variable_instance,
            attribute_type=ref.attribute_type,
            status=status,
            **fields,
        )


class ItemResults(BaseModel):
    items: list[ItemResult]


def get_configuration(keys: list[str] | None) -> tuple[str, dict[str, Any]]:
    """OCPP 1.6 §5.8 GetConfiguration: no key means every key."""
    return "GetConfiguration", {"key": keys} if keys else {}


def get_configuration_results(keys: list[str], response: dict[str, Any]) -> list[ItemResult]:
    """Per requested key (every key reported when none was requested)."""
    known = {entry["key"]: entry for entry in response.get("configurationKey", [])}
    results = [
        ItemResult(
            key=entry["key"],
            status="Accepted",
            value=entry.get("value"),
            readonly=entry["readonly"],
        )
        for key, entry in known.items()
        if not keys or key in keys
    ]
    unknown = [key for key in response.get("unknownKey", []) if key not in known]
    return results + [ItemResult(key=key, status=UNKNOWN_KEY) for key in unknown]


def change_configuration(key: str, value: str) -> tuple[str, dict[str, Any]]:
    """OCPP 1.6 §5.3 ChangeConfiguration: one key per call."""
    return "ChangeConfiguration", {"key": key, "value": value}


def get_variables(refs: list[VariableRef]) -> tuple[str, dict[str, Any]]:
    """OCPP 2.0.1 B06 GetVariables."""
    return "GetVariables", {
        "getVariableData": [
            {
                "component": ref.component_ocpp(),
                "variable": ref.variable_ocpp(),
                "attributeType": ref.attribute_type,
            }
            for ref in refs
        ]
    }


def set_variables(values: list[tuple[VariableRef, str]]) -> tuple[str, dict[str, Any]]:
    """OCPP 2.0.1 B05 SetVariables."""
    return "SetVariables", {
        "setVariableData": [
            {
                "attributeType": ref.attribute_type,
                "attributeValue": value,
                "component": ref.component_ocpp(),
                "variable": ref.variable_ocpp(),
            }
            for ref, value in values
        ]
    }


def variable_results(results: list[dict[str, Any]], value_field: str | None) -> list[ItemResult]:
    """GetVariableResult/SetVariableResult entries as items (matched by what they name)."""
    return [
        ItemResult.of_ref(
            VariableRef.from_ocpp(
                result["component"], result["variable"], result.get("attributeType")
            ),
            result["attributeStatus"],
            value=result.get(value_field) if value_field else None,
            status_info=result.get("attributeStatusInfo"),
        )
        for result in results
    ]


def get_report(
    command: CustomReportCommand, version: OcppVersion, request_id: int
) -> tuple[str, dict[str, Any]]:
    """OCPP 2.0.1 B08 GetReport."""
    if not version.is_2x:
        raise Untranslatable("GetReport is not in OCPP 1.6; use configuration/refresh")
    payload: dict[str, Any] = {"requestId": request_id}
    if command.component_criteria:
        payload["componentCriteria"] = command.component_criteria
    if command.component_variables:
        payload["componentVariable"] = [
            component_variable(ref) for ref in command.component_variables
        ]
    return "GetReport", payload


def component_variable(item: ComponentVariable) -> dict[str, Any]:
    """A ComponentVariableType (GetReport, GetMonitoringReport)."""
    # A component alone asks for all its variables (OCPP 2.0.1 B08.FR.04).
    ref = VariableRef(
        component=item.component,
        variable=item.variable or "",
        component_instance=item.component_instance,
        evse_id=item.evse_id,
        connector_id=item.connector_id,
        variable_instance=item.variable_instance,
    )
    entry: dict[str, Any] = {"component": ref.component_ocpp()}
    if item.variable is not None:
        entry["variable"] = ref.variable_ocpp()
    return entry

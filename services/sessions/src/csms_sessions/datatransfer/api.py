"""REST route of a CSMS-initiated DataTransfer (OCPP 1.6 §5.6, 2.0.1 P01)."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from csms_api.auth import AdminDep
from csms_api.problems import problem_responses
from csms_core.router import fixed
from csms_sessions.api.deps import ServiceDep, SessionDep, StationIdDep
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import CommandResponse, TimeoutQuery, call_station

router = APIRouter(
    route_class=DocumentedRoute,
    prefix="/stations/{station_id}/commands",
    tags=["data transfer"],
    responses=problem_responses(404, 409, 422, 502, 504),
)


class DataTransferCommand(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"vendor_id": "com.example", "message_id": "Hello", "data": "world"}]
        },
    )

    vendor_id: str = Field(min_length=1, max_length=255)
    message_id: str | None = Field(default=None, min_length=1, max_length=50)
    data: Any = Field(default=None, description="1.6: a string; 2.x: any JSON value")

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"vendorId": self.vendor_id}
        if self.message_id is not None:
            payload["messageId"] = self.message_id
        if self.data is not None:
            payload["data"] = self.data
        return payload


@router.post("/data-transfer")
async def data_transfer(
    caller: AdminDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: DataTransferCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Send a vendor-specific DataTransfer to a station."""
    return await call_station(
        sessions, station_id, fixed("DataTransfer", body.payload()), timeout_s
    )

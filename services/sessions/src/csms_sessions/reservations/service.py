"""Reservation state changes and the ReserveNow / CancelReservation payloads per version."""

from typing import Any

from pydantic import AwareDatetime, BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_ocpp import OcppVersion
from csms_sessions.commands.translate import Untranslatable
from csms_sessions.db import ocpp_time, utc_now
from csms_sessions.reservations.models import ACTIVE, Reservation, ReservationStatus
from csms_sessions.tokens.service import GROUP_TOKEN_TYPE

# ReservationUpdateStatusEnumType (2.0.1 H04) → our status.
_UPDATE_STATUS = {"Expired": ReservationStatus.EXPIRED, "Removed": ReservationStatus.REMOVED}


async def mark_reservation_used(
    session: AsyncSession, station_id: str, reservation_id: int
) -> Reservation | None:
    """A transaction started with the reservation (1.6 StartTransaction.reservationId,
    2.x TransactionEvent.reservationId): it is used. None if no such active reservation."""
    reservation = await session.get(Reservation, reservation_id)
    if reservation is None or reservation.station_id != station_id:
        return None
    if reservation.status not in ACTIVE:
        return None
    _set(reservation, ReservationStatus.USED)
    return reservation


async def on_status_update(
    session: AsyncSession, station_id: str, reservation_id: int, update_status: str
) -> Reservation | None:
    """The station ended the reservation (2.x ReservationStatusUpdate: Expired or Removed)."""
    reservation = await session.get(Reservation, reservation_id)
    if reservation is None or reservation.station_id != station_id:
        return None
    reservation.ocpp_status = update_status
    if reservation.status in ACTIVE:
        _set(reservation, _UPDATE_STATUS.get(update_status, ReservationStatus.REMOVED))
    return reservation


def answered(reservation: Reservation, ocpp_status: str) -> None:
    """The station's ReserveNow status."""
    reservation.ocpp_status = ocpp_status
    accepted = ocpp_status == "Accepted"
    _set(reservation, ReservationStatus.ACCEPTED if accepted else ReservationStatus.REJECTED)


def _set(reservation: Reservation, status: ReservationStatus) -> None:
    reservation.status = status
    reservation.updated_at = utc_now()


class ReserveNow(BaseModel):
    """A stored reservation, as the command sent to the station."""

    reservation_id: int
    id_token: str
    token_type: str | None
    evse_id: int | None
    connector_type: str | None
    expires_at: AwareDatetime
    group_id: str | None


class CancelReservation(BaseModel):
    reservation_id: int


def reserve_now(command: ReserveNow, version: OcppVersion) -> tuple[str, dict[str, Any]]:
    if not version.is_2x:
        if command.connector_type is not None:
            raise Untranslatable("OCPP 1.6 cannot reserve a connector type; omit connector_type")
        payload: dict[str, Any] = {
            "connectorId": command.evse_id or 0,  # 1.6 §5.13: 0 reserves the charge point
            "expiryDate": ocpp_time(command.expires_at),
            "idTag": command.id_token,
            "reservationId": command.reservation_id,
        }
        if command.group_id is not None:
            payload["parentIdTag"] = command.group_id
        return "ReserveNow", payload
    if command.token_type is None:
        raise Untranslatable("OCPP 2.x needs the token type; give type")
    payload = {
        "id": command.reservation_id,
        "expiryDateTime": ocpp_time(command.expires_at),
        "idToken": {"idToken": command.id_token, "type": command.token_type},
    }
    if command.evse_id is not None:
        payload["evseId"] = command.evse_id
    if command.connector_type is not None:
        payload["connectorType"] = command.connector_type
    if command.group_id is not None:
        payload["groupIdToken"] = {"idToken": command.group_id, "type": GROUP_TOKEN_TYPE}
    return "ReserveNow", payload


def cancel_reservation(
    command: CancelReservation, version: OcppVersion
) -> tuple[str, dict[str, Any]]:
    return "CancelReservation", {"reservationId": command.reservation_id}

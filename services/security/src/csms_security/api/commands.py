"""A station's answer as a REST body, and the problems when there is none."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, Field

from csms_api.problems import Problem
from csms_core.router import CommandOutcome, CommandResult, StationOffline
from csms_security.calls import InvalidCall
from csms_security.certificates.wire import Untranslatable


class StationAnswer(BaseModel):
    """What the station answered to the call the route sent."""

    action: str = Field(examples=["InstallCertificate"])
    outcome: CommandOutcome = Field(examples=["result"])
    status: str | None = Field(default=None, examples=["Accepted"])
    response: dict[str, Any] | None = Field(default=None, examples=[{"status": "Accepted"}])


def station_answer(result: CommandResult) -> StationAnswer:
    """The answer; 409 offline, 504 timeout, 422 refused by the gateway, 502 a CALLERROR."""
    reason = f"{result.error_code or ''} {result.error_description}".strip()
    match result.outcome:
        case CommandOutcome.RESULT:
            payload = result.payload or {}
            status = payload.get("status")
            return StationAnswer(
                action=result.action,
                outcome=result.outcome,
                status=status if isinstance(status, str) else None,
                response=payload,
            )
        case CommandOutcome.OFFLINE:
            raise station_offline(result.station_id)
        case CommandOutcome.TIMEOUT:
            raise Problem(504, f"no answer from {result.station_id} in time", kind="timeout")
        case CommandOutcome.REJECTED:
            raise Problem(422, f"the gateway refused to send it: {reason}", kind="rejected")
        case CommandOutcome.ERROR | CommandOutcome.INVALID_RESPONSE:
            raise Problem(
                502,
                f"{result.station_id} answered {result.outcome.value}: {reason}",
                kind="station-error",
                error_code=result.error_code,
            )


def station_offline(station_id: str) -> Problem:
    return Problem(409, f"no gateway holds a connection to {station_id}", kind="station-offline")


@contextmanager
def call_problems(station_id: str) -> Iterator[None]:
    """Why a call could not be sent, as the problem a REST caller gets."""
    try:
        yield
    except StationOffline:
        raise station_offline(station_id) from None
    except Untranslatable as exc:
        raise Problem(422, str(exc), kind="not-in-this-ocpp-version") from exc
    except InvalidCall as exc:
        raise Problem(422, str(exc), kind="invalid-ocpp-payload") from exc

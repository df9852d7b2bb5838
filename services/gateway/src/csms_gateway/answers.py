"""The answer to a station's CALL from its parts (docs/architecture.md "Composed answers").

A CALL's ``Routing`` names its owner (the party that decides, or the gateway) and its
contributors. ``PendingAnswer`` collects their ``CallAnswer``s until every part came,
the owner refused, or the decision timeout passed (contributors whose claims bound
their wait, ``Routing.budget_s``, are waited for only that long); ``compose`` merges
what came: the owner's answer (the fallback if it never came) with the contributors'
fields. A late contributor is left out: the owner's part goes alone.
"""

import asyncio
import contextlib
import logging
from typing import Any

from csms_core.calls import GATEWAY, NOBODY, Routing, merge_answer
from csms_core.router import CallAnswer
from csms_ocpp import schemas
from csms_ocpp.actions import now_iso
from csms_ocpp.errors import ErrorCode, error_code, parse_error_code
from csms_ocpp.frames import Call, CallError, CallResult, Send
from csms_ocpp.versions import OcppVersion

logger = logging.getLogger(__name__)

Answer = CallResult | CallError
# CALLs with an answer of their own when nobody decides them (in time).
FALLBACKS = frozenset({"BootNotification", "Authorize"})
# The party that checks an Authorize's ISO 15118 contract (its claim: contract data only);
# other contributors to an Authorize (billing's tariff) leave the token's status alone.
CONTRACT_CHECKER = "security"


def fallback(version: OcppVersion, call: Call) -> Answer:
    """The answer when the owning service decided nothing within the decision timeout."""
    if call.action == "BootNotification":
        # Pending: the station stays connected and boots again after ``interval`` seconds.
        return CallResult(
            call.message_id, {"status": "Pending", "currentTime": now_iso(), "interval": 30}
        )
    if call.action == "Authorize":
        if version is OcppVersion.V16:
            return CallResult(call.message_id, {"idTagInfo": {"status": "Invalid"}})
        return CallResult(call.message_id, {"idTokenInfo": {"status": "Unknown"}})
    return error(call, ErrorCode.INTERNAL_ERROR, version, "no decision in time")


def error(call: Call | Send, code: ErrorCode, version: OcppVersion, text: str) -> CallError:
    return CallError(call.message_id, error_code(code, version), text)


def answer_frame(version: OcppVersion, call: Call, answer: CallAnswer) -> Answer:
    """The frame for the owner's ``CallAnswer``; a non-conforming payload is our bug."""
    if answer.error_code is not None:
        code = parse_error_code(answer.error_code)
        wire = error_code(code, version) if code is not None else answer.error_code
        return CallError(call.message_id, wire, answer.error_description)
    payload = answer.payload if answer.payload is not None else {}
    violation = schemas.validate(version, call.action, payload, response=True)
    if violation is None:
        return CallResult(call.message_id, payload)
    logger.error(
        "service answer to %s breaks the response schema: %s",
        call.action,
        violation.description,
        extra={"station_id": answer.station_id, "message_id": call.message_id},
    )
    return error(call, ErrorCode.INTERNAL_ERROR, version, "the CSMS produced an invalid answer")


def compose(
    version: OcppVersion,
    call: Call,
    decided: dict[str, Any],
    parts: list[CallAnswer],
    waited: tuple[str, ...] = (),
) -> CallResult:
    """The owner's answer with the contributors' fields added (``waited``: the contributors
    routed, whether or not their part came); the owner's alone if the merged one breaks the
    response schema (a contributor's bug: logged)."""
    contributions = [part.payload for part in parts if part.error_code is None and part.payload]
    answer = decided
    if contributions:
        merged = merge_answer(decided, contributions)
        violation = schemas.validate(version, call.action, merged, response=True)
        if violation is None:
            answer = merged
        else:
            logger.error(
                "contributions to %s break the response schema (sent without them): %s",
                call.action,
                violation.description,
                extra={"message_id": call.message_id, "parties": [part.party for part in parts]},
            )
    if CONTRACT_CHECKER in waited and call.action == "Authorize" and version.is_2x:
        answer = contract_checked(answer)
    return CallResult(call.message_id, answer)


def contract_checked(answer: dict[str, Any]) -> dict[str, Any]:
    """An AuthorizeResponse to ISO 15118 contract data, after the contract certificate's
    check (OCPP 2.0.1 C07.FR.16): a certificate that is not ``Accepted`` makes an accepted
    idToken ``Invalid``; no check in time counts as ``NoCertificateAvailable``."""
    status = answer.get("certificateStatus", "NoCertificateAvailable")
    token = dict(answer.get("idTokenInfo") or {"status": "Invalid"})
    if status != "Accepted" and token.get("status") == "Accepted":
        token["status"] = "Invalid"
    return {**answer, "certificateStatus": status, "idTokenInfo": token}


class PendingAnswer:
    """The parts of one CALL's answer the gateway waits for (its ``Routing``): the owner's
    unless the gateway answers itself, and each contributor's."""

    def __init__(self, routing: Routing) -> None:
        self.routing = routing
        self.decision: CallAnswer | None = None
        self.parts: dict[str, CallAnswer] = {}
        self._owner_waited = routing.owner not in (GATEWAY, NOBODY)
        self._complete = asyncio.Event()
        self._decided = asyncio.Event()  # the owner's part came (or none is waited for)
        self._check()

    def add(self, answer: CallAnswer) -> bool:
        """Take one party's part; False if it is none this CALL waits for (or came twice)."""
        party = answer.party or self.routing.owner  # no party: a sender older than parts
        if party == self.routing.owner and self._owner_waited and self.decision is None:
            self.decision = answer
        elif party in self.routing.contributors and party not in self.parts:
            self.parts[party] = answer
        else:
            return False
        self._check()
        return True

    def _check(self) -> None:
        refused = self.decision is not None and self.decision.error_code is not None
        owner_in = self.decision is not None or not self._owner_waited
        if owner_in:
            self._decided.set()
        if refused or (owner_in and len(self.parts) == len(self.routing.contributors)):
            self._complete.set()

    async def wait(self, timeout_s: float) -> None:
        """Until every part came or the owner refused, for at most ``timeout_s``; past the
        contributors' budget (when their claims bound it) for the owner's part alone."""
        budget_s = self.routing.budget_s
        if budget_s is None or budget_s >= timeout_s:
            await _until(self._complete, timeout_s)
        elif not await _until(self._complete, budget_s):
            await _until(self._decided, timeout_s - budget_s)

    @property
    def late(self) -> list[str]:
        """The contributors whose part did not come."""
        return [party for party in self.routing.contributors if party not in self.parts]


async def _until(event: asyncio.Event, timeout_s: float) -> bool:
    """Whether ``event`` was set within ``timeout_s``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout_s)
    return event.is_set()

"""What a party declares it does for the answers to station CALLs, and who answers one CALL.

A party (a service) ``decides`` the answer to a CALL, or ``contributes`` fields to an
answer another party decides (or the gateway gives). Its ``Declaration`` is derived
from its handlers' registrations (``csms_core.calls.registry``) and announced while it
runs (``csms_core.calls.directory``); an ``AnswerTable`` built from the declarations of
the parties alive routes each CALL: its owner and its contributors. See
docs/architecture.md "Who answers a station's CALL".
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

GATEWAY = "gateway"  # the owner of a CALL whose answer carries no decision
NOBODY = "nobody"  # the owner of a CALL that needs a decision no party alive makes


class Role(StrEnum):
    DECIDES = "decides"
    CONTRIBUTES = "contributes"


class Condition(BaseModel):
    """A claim applies to a CALL whose payload has one of ``fields`` at its top level (when
    any are named) and whose top-level ``equals[0]`` is ``equals[1]`` (when named).

    Declarations travel as JSON between replicas: ``equals`` is optional, so a replica that
    predates it reads the old shape; one that does not know ``equals`` reads such a
    condition as naming no field, which holds for no CALL (it waits for nobody).
    """

    model_config = ConfigDict(frozen=True)

    fields: tuple[str, ...] = ()
    equals: tuple[str, str] | None = None

    def holds(self, payload: Mapping[str, Any]) -> bool:
        if self.fields and not any(name in payload for name in self.fields):
            return False
        return self.equals is None or payload.get(self.equals[0]) == self.equals[1]

    def describe(self) -> str:
        """As docs/architecture.md's table shows it: ``idToken``, ``eventType = Ended``."""
        parts = [" or ".join(self.fields)] if self.fields else []
        if self.equals is not None:
            parts.append(f"{self.equals[0]} = {self.equals[1]}")
        return " and ".join(parts)


def has(*fields: str) -> Condition:
    """The payload has one of ``fields`` (e.g. ``has("idToken")`` for a TransactionEvent)."""
    return Condition(fields=fields)


def equals(field: str, value: str) -> Condition:
    """The payload's top-level ``field`` is ``value`` (e.g. ``equals("eventType", "Ended")``)."""
    return Condition(equals=(field, value))


class Claim(BaseModel):
    """One thing a party does for the answers to one action in some versions.

    ``wait_s`` (contributions only): the part is worth waiting for at most this long, not
    the whole decision timeout (billing's running cost on a 2.1 Updated event: the answer
    goes without it rather than every station waiting on a lagging billing). A replica that
    predates it reads the claim without it and waits the whole timeout, as before.
    """

    model_config = ConfigDict(frozen=True)

    action: str
    role: Role
    versions: tuple[str, ...]
    when: Condition | None = None
    wait_s: float | None = None

    def applies(self, version: str, payload: Mapping[str, Any]) -> bool:
        return version in self.versions and (self.when is None or self.when.holds(payload))


class Declaration(BaseModel):
    """What one party decides and contributes."""

    model_config = ConfigDict(frozen=True)

    party: str
    claims: tuple[Claim, ...] = ()

    def common(self, other: "Declaration") -> "Declaration":
        """The claims both make (two replicas of a party during a rolling upgrade)."""
        return Declaration(
            party=self.party, claims=tuple(c for c in self.claims if c in other.claims)
        )


@dataclass(frozen=True, slots=True)
class Routing:
    """Who answers one CALL: its owner (a party, ``gateway`` or ``nobody``) and the parties
    that add fields to the answer."""

    owner: str
    contributors: tuple[str, ...] = ()
    # How long the contributors' parts are waited for when each claim that applies bounds
    # it (``Claim.wait_s``: the largest); None: within the decision timeout, as the owner's.
    budget_s: float | None = None

    @property
    def waits(self) -> bool:
        """Some party's part is waited for."""
        return self.owner not in (GATEWAY, NOBODY) or (
            self.owner == GATEWAY and bool(self.contributors)
        )


_UNCLAIMED_KEPT = 1024


class AnswerTable:
    """Who decides and who contributes, from the declarations of the parties alive.

    ``answers_itself(version, action)`` is OCPP's knowledge (``csms_ocpp.actions``):
    the CALLs whose answer carries no decision, which the gateway gives when no party
    decides them.
    """

    def __init__(
        self, declarations: Iterable[Declaration], answers_itself: Callable[[str, str], bool]
    ) -> None:
        self._answers_itself = answers_itself
        self._claims: dict[str, list[tuple[str, Claim]]] = {}
        parties = set()
        for declaration in sorted(declarations, key=lambda d: d.party):
            parties.add(declaration.party)
            for claim in declaration.claims:
                self._claims.setdefault(claim.action, []).append((declaration.party, claim))
        self.parties = frozenset(parties)
        # The routing of each (version, action) nobody claims, which no payload changes
        # (Heartbeat, StatusNotification, MeterValues: most of a gateway's CALLs).
        self._unclaimed: dict[tuple[str, str], Routing] = {}

    def route(self, version: str, action: str, payload: Mapping[str, Any]) -> Routing:
        if action not in self._claims:
            routing = self._unclaimed.get((version, action))
            if routing is None:
                routing = self._route(version, action, payload)
                if len(self._unclaimed) < _UNCLAIMED_KEPT:  # action names come from stations
                    self._unclaimed[version, action] = routing
            return routing
        return self._route(version, action, payload)

    def _route(self, version: str, action: str, payload: Mapping[str, Any]) -> Routing:
        claims = [(p, c) for p, c in self._claims.get(action, ()) if c.applies(version, payload)]
        deciders = [party for party, claim in claims if claim.role is Role.DECIDES]
        if deciders:
            owner = deciders[0]  # two are a deployment bug: tests/test_call_declarations.py
        elif self._answers_itself(version, action):
            owner = GATEWAY
        else:
            return Routing(NOBODY)
        contributing = [
            (party, claim)
            for party, claim in claims
            if claim.role is Role.CONTRIBUTES and party != owner
        ]
        contributors = tuple(dict.fromkeys(party for party, _ in contributing))
        bounds = [claim.wait_s for _, claim in contributing]
        budget_s = None
        if bounds and all(bound is not None for bound in bounds):
            budget_s = max(bound for bound in bounds if bound is not None)
        return Routing(owner, contributors, budget_s)

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(action, versions, party, role, condition) for every claim, sorted: the table
        docs/architecture.md shows (a bounded wait as ``(waited at most 2 s)``)."""
        return sorted(
            (
                claim.action,
                ", ".join(claim.versions),
                party,
                claim.role.value,
                _condition_text(claim),
            )
            for claims in self._claims.values()
            for party, claim in claims
        )


def _condition_text(claim: Claim) -> str:
    text = claim.when.describe() if claim.when is not None else ""
    if claim.wait_s is not None:
        text = f"{text} (waited at most {claim.wait_s:g} s)".lstrip()
    return text


def merge_answer(decided: Mapping[str, Any], parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The decider's answer with the contributors' fields added: the decider's own fields
    win (then the first contributor of a field); objects are merged field by field."""
    merged = dict(decided)
    for part in parts:
        for name, value in part.items():
            if name not in merged:
                merged[name] = value
            elif isinstance(merged[name], Mapping) and isinstance(value, Mapping):
                merged[name] = merge_answer(merged[name], [value])
    return merged

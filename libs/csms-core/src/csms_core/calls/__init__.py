"""Who answers a station's CALL: declared by the services where their handlers are defined.

``registry``: a service's ``CallHandlers`` (``@calls.decides(AUTHORIZE)``, ``contributes``,
``handles``); ``declaration``: what a party claims and the ``AnswerTable`` that routes a
CALL to its owner and contributors; ``directory``: services announce their declarations,
gateways read them. docs/architecture.md "Who answers a station's CALL".
"""

from csms_core.calls.declaration import (
    GATEWAY,
    NOBODY,
    AnswerTable,
    Claim,
    Condition,
    Declaration,
    Role,
    Routing,
    equals,
    has,
    merge_answer,
)
from csms_core.calls.directory import Announced, Announcement, AnswerDirectory, alive, table_of
from csms_core.calls.registry import CallHandlers, Registered

__all__ = [
    "GATEWAY",
    "NOBODY",
    "Announced",
    "Announcement",
    "AnswerDirectory",
    "AnswerTable",
    "CallHandlers",
    "Claim",
    "Condition",
    "Declaration",
    "Registered",
    "Role",
    "Routing",
    "alive",
    "equals",
    "has",
    "merge_answer",
    "table_of",
]

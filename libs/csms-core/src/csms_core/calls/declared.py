"""Who decides and who adds to the answers of station CALLs in this CSMS, as checked in.

The source of truth are the services' registrations (``@calls.decides(...)`` where each
handler is defined); gateways route by what the running services announce
(``directory``). This table is the same knowledge written down once, for what cannot
ask a running service: test kits that publish CALLs the way a gateway does, the docs'
table (docs/architecture.md "Who answers a station's CALL"). ``tests/test_call_declarations.py``
fails when it and a service's registrations differ: a call declared here as decided
with no handler behind it, or a handler that decides a call this table does not name.
"""

from csms_core.calls.declaration import Claim, Declaration, Role, equals, has

ALL = ("1.6", "2.0.1", "2.1")
V16 = ("1.6",)
V2X = ("2.0.1", "2.1")
V21 = ("2.1",)


def _decides(action: str, versions: tuple[str, ...], *fields: str) -> Claim:
    when = has(*fields) if fields else None
    return Claim(action=action, role=Role.DECIDES, versions=versions, when=when)


def _contributes(action: str, versions: tuple[str, ...], *fields: str) -> Claim:
    when = has(*fields) if fields else None
    return Claim(action=action, role=Role.CONTRIBUTES, versions=versions, when=when)


SESSIONS = Declaration(
    party="sessions",
    claims=(
        _decides("Authorize", ALL),
        _decides("BootNotification", ALL),
        _decides("DataTransfer", ALL),
        _decides("StartTransaction", V16),
        _decides("StopTransaction", V16),
        # Only an idToken asks for a decision (idTokenInfo); otherwise the answer is empty.
        _decides("TransactionEvent", V2X, "idToken"),
    ),
)
SMARTCHARGING = Declaration(
    party="smartcharging",
    claims=(
        _decides("NotifyEVChargingNeeds", V2X),
        _decides("NotifyEVChargingSchedule", V2X),
    ),
)
SECURITY = Declaration(
    party="security",
    claims=(
        # 2.0.1 C07: the contract certificate's status, next to sessions' idTokenInfo.
        _contributes("Authorize", V2X, "iso15118CertificateHashData", "certificate"),
        _decides("Get15118EVCertificate", V2X),
        _decides("GetCertificateChainStatus", V21),
        _decides("GetCertificateStatus", V2X),
        _decides("SignCertificate", ALL),
    ),
)

BILLING = Declaration(
    party="billing",
    claims=(
        # 2.0.1 I02/I03: the final cost (totalCost) on Ended; no other 2.0.1 event waits for it.
        Claim(
            action="TransactionEvent",
            role=Role.CONTRIBUTES,
            versions=V2X,
            when=equals("eventType", "Ended"),
        ),
        # 2.1: the running cost (Updated) and a prepaid token's transactionLimit.maxCost
        # (Started, Updated), waited for 2 s at most: a lagging billing holds no station long.
        *(
            Claim(
                action="TransactionEvent",
                role=Role.CONTRIBUTES,
                versions=V21,
                when=equals("eventType", event_type),
                wait_s=2.0,
            )
            for event_type in ("Started", "Updated")
        ),
        # 2.1: the driver's tariff in the AuthorizeResponse, waited for 2 s at most.
        Claim(action="Authorize", role=Role.CONTRIBUTES, versions=V21, wait_s=2.0),
        _decides("VatNumberValidation", V21),
        # 2.1 NotifySettlement: the receipt billing made (receiptUrl) on the gateway's {}.
        _contributes("NotifySettlement", V21),
    ),
)

DECLARED: tuple[Declaration, ...] = (SESSIONS, SMARTCHARGING, SECURITY, BILLING)
# Station CALLs whose answer needs a decision nobody makes yet: answered NotSupported.
UNDECIDED: dict[str, tuple[str, ...]] = {
    "OpenPeriodicEventStream": V21,
    "PullDynamicScheduleUpdate": V21,
}

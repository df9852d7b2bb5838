"""Typed station CALLs and their answers: one ``Message`` per action and version family.

A ``Message`` names an action, the versions it has that shape in, and the request and
response payloads as ``TypedDict``s (the JSON objects themselves, checked by mypy; the
official schemas still validate every frame at runtime). A handler registered for a
message (``csms_core.calls``) takes its request type and returns its response type, in
the spirit of mobilityhouse/ocpp's per-action dataclasses. Keys follow the schemas
(tested against them: ``tests/test_messages.py``); nested types the schemas define in
detail (IdTokenInfo, ChargingStation, TariffType, ...) are JSON objects here, and
``customData`` (2.x) is left out of the types but allowed on the wire.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, NotRequired, TypedDict, TypeVar

JsonObject = dict[str, Any]

V16: tuple[str, ...] = ("1.6",)
V2X: tuple[str, ...] = ("2.0.1", "2.1")
V21: tuple[str, ...] = ("2.1",)
ALL_VERSIONS: tuple[str, ...] = ("1.6", "2.0.1", "2.1")

Req = TypeVar("Req", bound=Mapping[str, object])
Resp = TypeVar("Resp", bound=Mapping[str, object])


@dataclass(frozen=True, slots=True)
class Message(Generic[Req, Resp]):
    """A station CALL of ``action`` in ``versions``: its request and response payload types."""

    action: str
    versions: tuple[str, ...]
    request: type[Req]
    response: type[Resp]


class NoAnswer(TypedDict):
    """The empty answer of a CALL whose response carries no decision (the gateway gives it)."""


# -- provisioning (B) ----------------------------------------------------------------------


class BootNotificationRequest16(TypedDict):
    chargePointVendor: str
    chargePointModel: str
    chargePointSerialNumber: NotRequired[str]
    chargeBoxSerialNumber: NotRequired[str]
    firmwareVersion: NotRequired[str]
    iccid: NotRequired[str]
    imsi: NotRequired[str]
    meterType: NotRequired[str]
    meterSerialNumber: NotRequired[str]


class BootNotificationRequest(TypedDict):
    """2.0.1 and 2.1."""

    reason: str
    chargingStation: JsonObject


class BootNotificationResponse16(TypedDict):
    status: str  # Accepted, Pending, Rejected
    currentTime: str
    interval: int


class BootNotificationResponse(BootNotificationResponse16):
    """2.0.1 and 2.1 (a 2.x answer is also a 1.6 one, bar ``statusInfo``)."""

    statusInfo: NotRequired[JsonObject]


class HeartbeatRequest(TypedDict):
    pass


class HeartbeatResponse(TypedDict):
    currentTime: str


class StatusNotificationRequest16(TypedDict):
    connectorId: int
    errorCode: str
    status: str
    info: NotRequired[str]
    timestamp: NotRequired[str]
    vendorId: NotRequired[str]
    vendorErrorCode: NotRequired[str]


class StatusNotificationRequest(TypedDict):
    """2.0.1 and 2.1."""

    timestamp: str
    connectorStatus: str
    evseId: int
    connectorId: int


class NotifyReportRequest(TypedDict):
    requestId: int
    generatedAt: str
    seqNo: int
    reportData: NotRequired[list[JsonObject]]
    tbc: NotRequired[bool]


# -- diagnostics (N) -----------------------------------------------------------------------


class VariableMonitoring(TypedDict):
    """One monitor of a variable (VariableMonitoringType; 2.1 adds eventNotificationType)."""

    id: int
    transaction: bool
    value: float
    type: str  # UpperThreshold, LowerThreshold, Delta, Periodic, PeriodicClockAligned, ...
    severity: int
    eventNotificationType: NotRequired[str]


class MonitoringData(TypedDict):
    component: JsonObject
    variable: JsonObject
    variableMonitoring: list[VariableMonitoring]


class NotifyMonitoringReportRequest(TypedDict):
    """2.0.1 N02: a part of the report GetMonitoringReport asked for."""

    requestId: int
    seqNo: int
    generatedAt: str
    monitor: NotRequired[list[MonitoringData]]
    tbc: NotRequired[bool]


class EventData(TypedDict):
    """2.0.1 N07/N08 EventDataType (2.1 adds severity)."""

    eventId: int
    timestamp: str
    trigger: str  # Alerting, Delta, Periodic
    actualValue: str
    eventNotificationType: str
    component: JsonObject
    variable: JsonObject
    cause: NotRequired[int]
    techCode: NotRequired[str]
    techInfo: NotRequired[str]
    cleared: NotRequired[bool]
    transactionId: NotRequired[str]
    variableMonitoringId: NotRequired[int]
    severity: NotRequired[int]


class NotifyEventRequest(TypedDict):
    generatedAt: str
    seqNo: int
    eventData: list[EventData]
    tbc: NotRequired[bool]


class NotifyCustomerInformationRequest(TypedDict):
    """2.0.1 N09/N10: a part of the customer data CustomerInformation asked for."""

    data: str
    seqNo: int
    generatedAt: str
    requestId: int
    tbc: NotRequired[bool]


# -- authorization (C) ---------------------------------------------------------------------


class AuthorizeRequest16(TypedDict):
    idTag: str


class AuthorizeRequest(TypedDict):
    """2.0.1 and 2.1; ISO 15118 contract data in ``certificate`` or its hashes."""

    idToken: JsonObject
    certificate: NotRequired[str]
    iso15118CertificateHashData: NotRequired[list[JsonObject]]


class AuthorizeResponse16(TypedDict):
    idTagInfo: JsonObject


class AuthorizeResponse(TypedDict):
    """2.0.1 and 2.1 (``allowedEnergyTransfer`` and ``tariff`` are 2.1 only)."""

    idTokenInfo: JsonObject
    certificateStatus: NotRequired[str]
    allowedEnergyTransfer: NotRequired[list[str]]
    tariff: NotRequired[JsonObject]


# -- transactions (E) and metering (J) -----------------------------------------------------


class StartTransactionRequest16(TypedDict):
    connectorId: int
    idTag: str
    meterStart: int
    timestamp: str
    reservationId: NotRequired[int]


class StartTransactionResponse16(TypedDict):
    transactionId: int
    idTagInfo: JsonObject


class StopTransactionRequest16(TypedDict):
    transactionId: int
    timestamp: str
    meterStop: int
    idTag: NotRequired[str]
    reason: NotRequired[str]
    transactionData: NotRequired[list[JsonObject]]


class StopTransactionResponse16(TypedDict):
    """``idTagInfo`` only when the request named an idTag."""

    idTagInfo: NotRequired[JsonObject]


class TransactionEventRequest(TypedDict):
    """2.0.1 and 2.1 (``costDetails``, ``preconditioningStatus``, ``evseSleep``: 2.1)."""

    eventType: str  # Started, Updated, Ended
    timestamp: str
    triggerReason: str
    seqNo: int
    transactionInfo: JsonObject
    meterValue: NotRequired[list[JsonObject]]
    offline: NotRequired[bool]
    numberOfPhasesUsed: NotRequired[int]
    cableMaxCurrent: NotRequired[int]
    reservationId: NotRequired[int]
    evse: NotRequired[JsonObject]
    idToken: NotRequired[JsonObject]
    costDetails: NotRequired[JsonObject]
    preconditioningStatus: NotRequired[str]
    evseSleep: NotRequired[bool]


class TransactionEventResponse(TypedDict, total=False):
    """2.0.1 and 2.1: every field optional; ``totalCost`` is the running or final cost
    (``transactionLimit`` and ``updatedPersonalMessageExtra``: 2.1)."""

    idTokenInfo: JsonObject
    totalCost: float
    chargingPriority: int
    updatedPersonalMessage: JsonObject
    updatedPersonalMessageExtra: list[JsonObject]
    transactionLimit: JsonObject


class MeterValuesRequest16(TypedDict):
    connectorId: int
    meterValue: list[JsonObject]
    transactionId: NotRequired[int]


class MeterValuesRequest(TypedDict):
    """2.0.1 and 2.1."""

    evseId: int
    meterValue: list[JsonObject]


# -- reservations (H), data transfer (P) ---------------------------------------------------


class ReservationStatusUpdateRequest(TypedDict):
    reservationId: int
    reservationUpdateStatus: str


class DataTransferRequest(TypedDict):
    """Every version (1.6 ``data`` is a string; 2.x any JSON value)."""

    vendorId: str
    messageId: NotRequired[str]
    data: NotRequired[Any]


class DataTransferResponse(TypedDict):
    status: str  # Accepted, Rejected, UnknownMessageId, UnknownVendorId
    data: NotRequired[Any]
    statusInfo: NotRequired[JsonObject]


# -- smart charging (K) --------------------------------------------------------------------


class NotifyEVChargingNeedsRequest(TypedDict):
    evseId: int
    chargingNeeds: JsonObject
    maxScheduleTuples: NotRequired[int]
    timestamp: NotRequired[str]


class NotifyEVChargingNeedsResponse(TypedDict):
    status: str  # Accepted, Rejected, Processing; 2.1: NoChargingProfile
    statusInfo: NotRequired[JsonObject]


class NotifyEVChargingScheduleRequest(TypedDict):
    timeBase: str
    evseId: int
    chargingSchedule: JsonObject
    selectedChargingScheduleId: NotRequired[int]
    powerToleranceAcceptance: NotRequired[bool]


class GenericStatusResponse(TypedDict):
    """The answer of NotifyEVChargingSchedule, SignCertificate (``statusInfo``: 2.x)."""

    status: str  # Accepted, Rejected
    statusInfo: NotRequired[JsonObject]


class NotifyChargingLimitRequest(TypedDict):
    chargingLimit: JsonObject
    chargingSchedule: NotRequired[list[JsonObject]]
    evseId: NotRequired[int]


class ClearedChargingLimitRequest(TypedDict):
    chargingLimitSource: str
    evseId: NotRequired[int]


class ReportChargingProfilesRequest(TypedDict):
    requestId: int
    chargingLimitSource: str
    evseId: int
    chargingProfile: list[JsonObject]
    tbc: NotRequired[bool]


# -- security (A) and certificates (M) -----------------------------------------------------


class SignCertificateRequest(TypedDict):
    """Every version (1.6 security whitepaper: ``csr`` only; 2.1 adds the last two)."""

    csr: str
    certificateType: NotRequired[str]
    hashRootCertificate: NotRequired[JsonObject]
    requestId: NotRequired[int]


class SecurityEventNotificationRequest(TypedDict):
    type: str
    timestamp: str
    techInfo: NotRequired[str]


class Get15118EVCertificateRequest(TypedDict):
    iso15118SchemaVersion: str
    action: str  # Install, Update
    exiRequest: str
    maximumContractCertificateChains: NotRequired[int]
    prioritizedEMAIDs: NotRequired[list[str]]


class Get15118EVCertificateResponse(TypedDict):
    status: str  # Accepted, Failed
    exiResponse: str
    statusInfo: NotRequired[JsonObject]
    remainingContracts: NotRequired[int]


class GetCertificateStatusRequest(TypedDict):
    ocspRequestData: JsonObject


class GetCertificateStatusResponse(TypedDict):
    status: str  # Accepted, Failed
    ocspResult: NotRequired[str]
    statusInfo: NotRequired[JsonObject]


class GetCertificateChainStatusRequest(TypedDict):
    certificateStatusRequests: list[JsonObject]


class GetCertificateChainStatusResponse(TypedDict):
    certificateStatus: list[JsonObject]


# -- payments and cost (I, 2.1) ------------------------------------------------------------


class VatNumberValidationRequest(TypedDict):
    vatNumber: str
    evseId: NotRequired[int]


class VatNumberValidationResponse(TypedDict):
    vatNumber: str
    status: str  # Accepted, Rejected
    evseId: NotRequired[int]
    company: NotRequired[JsonObject]
    statusInfo: NotRequired[JsonObject]


class NotifySettlementRequest(TypedDict):
    pspRef: str
    status: str
    settlementAmount: float
    settlementTime: str
    transactionId: NotRequired[str]
    statusInfo: NotRequired[str]
    receiptId: NotRequired[str]
    receiptUrl: NotRequired[str]
    vatCompany: NotRequired[JsonObject]
    vatNumber: NotRequired[str]


class NotifySettlementResponse(TypedDict, total=False):
    receiptUrl: str
    receiptId: str


# -- the messages --------------------------------------------------------------------------

BOOT_NOTIFICATION_16 = Message(
    "BootNotification", V16, BootNotificationRequest16, BootNotificationResponse16
)
BOOT_NOTIFICATION = Message(
    "BootNotification", V2X, BootNotificationRequest, BootNotificationResponse
)
HEARTBEAT = Message("Heartbeat", ALL_VERSIONS, HeartbeatRequest, HeartbeatResponse)
STATUS_NOTIFICATION_16 = Message("StatusNotification", V16, StatusNotificationRequest16, NoAnswer)
STATUS_NOTIFICATION = Message("StatusNotification", V2X, StatusNotificationRequest, NoAnswer)
NOTIFY_REPORT = Message("NotifyReport", V2X, NotifyReportRequest, NoAnswer)
NOTIFY_MONITORING_REPORT = Message(
    "NotifyMonitoringReport", V2X, NotifyMonitoringReportRequest, NoAnswer
)
NOTIFY_EVENT = Message("NotifyEvent", V2X, NotifyEventRequest, NoAnswer)
NOTIFY_CUSTOMER_INFORMATION = Message(
    "NotifyCustomerInformation", V2X, NotifyCustomerInformationRequest, NoAnswer
)
AUTHORIZE_16 = Message("Authorize", V16, AuthorizeRequest16, AuthorizeResponse16)
AUTHORIZE = Message("Authorize", V2X, AuthorizeRequest, AuthorizeResponse)
START_TRANSACTION_16 = Message(
    "StartTransaction", V16, StartTransactionRequest16, StartTransactionResponse16
)
STOP_TRANSACTION_16 = Message(
    "StopTransaction", V16, StopTransactionRequest16, StopTransactionResponse16
)
TRANSACTION_EVENT = Message(
    "TransactionEvent", V2X, TransactionEventRequest, TransactionEventResponse
)
METER_VALUES_16 = Message("MeterValues", V16, MeterValuesRequest16, NoAnswer)
METER_VALUES = Message("MeterValues", V2X, MeterValuesRequest, NoAnswer)
RESERVATION_STATUS_UPDATE = Message(
    "ReservationStatusUpdate", V2X, ReservationStatusUpdateRequest, NoAnswer
)
DATA_TRANSFER = Message("DataTransfer", ALL_VERSIONS, DataTransferRequest, DataTransferResponse)
NOTIFY_EV_CHARGING_NEEDS = Message(
    "NotifyEVChargingNeeds", V2X, NotifyEVChargingNeedsRequest, NotifyEVChargingNeedsResponse
)
NOTIFY_EV_CHARGING_SCHEDULE = Message(
    "NotifyEVChargingSchedule", V2X, NotifyEVChargingScheduleRequest, GenericStatusResponse
)
NOTIFY_CHARGING_LIMIT = Message("NotifyChargingLimit", V2X, NotifyChargingLimitRequest, NoAnswer)
CLEARED_CHARGING_LIMIT = Message("ClearedChargingLimit", V2X, ClearedChargingLimitRequest, NoAnswer)
REPORT_CHARGING_PROFILES = Message(
    "ReportChargingProfiles", V2X, ReportChargingProfilesRequest, NoAnswer
)
SIGN_CERTIFICATE = Message(
    "SignCertificate", ALL_VERSIONS, SignCertificateRequest, GenericStatusResponse
)
SECURITY_EVENT_NOTIFICATION = Message(
    "SecurityEventNotification", ALL_VERSIONS, SecurityEventNotificationRequest, NoAnswer
)
GET_15118_EV_CERTIFICATE = Message(
    "Get15118EVCertificate", V2X, Get15118EVCertificateRequest, Get15118EVCertificateResponse
)
GET_CERTIFICATE_STATUS = Message(
    "GetCertificateStatus", V2X, GetCertificateStatusRequest, GetCertificateStatusResponse
)
GET_CERTIFICATE_CHAIN_STATUS = Message(
    "GetCertificateChainStatus",
    V21,
    GetCertificateChainStatusRequest,
    GetCertificateChainStatusResponse,
)
VAT_NUMBER_VALIDATION = Message(
    "VatNumberValidation", V21, VatNumberValidationRequest, VatNumberValidationResponse
)
NOTIFY_SETTLEMENT = Message(
    "NotifySettlement", V21, NotifySettlementRequest, NotifySettlementResponse
)

MESSAGES: tuple[Message[Any, Any], ...] = (
    BOOT_NOTIFICATION_16,
    BOOT_NOTIFICATION,
    HEARTBEAT,
    STATUS_NOTIFICATION_16,
    STATUS_NOTIFICATION,
    NOTIFY_REPORT,
    NOTIFY_MONITORING_REPORT,
    NOTIFY_EVENT,
    NOTIFY_CUSTOMER_INFORMATION,
    AUTHORIZE_16,
    AUTHORIZE,
    START_TRANSACTION_16,
    STOP_TRANSACTION_16,
    TRANSACTION_EVENT,
    METER_VALUES_16,
    METER_VALUES,
    RESERVATION_STATUS_UPDATE,
    DATA_TRANSFER,
    NOTIFY_EV_CHARGING_NEEDS,
    NOTIFY_EV_CHARGING_SCHEDULE,
    NOTIFY_CHARGING_LIMIT,
    CLEARED_CHARGING_LIMIT,
    REPORT_CHARGING_PROFILES,
    SIGN_CERTIFICATE,
    SECURITY_EVENT_NOTIFICATION,
    GET_15118_EV_CERTIFICATE,
    GET_CERTIFICATE_STATUS,
    GET_CERTIFICATE_CHAIN_STATUS,
    VAT_NUMBER_VALIDATION,
    NOTIFY_SETTLEMENT,
)

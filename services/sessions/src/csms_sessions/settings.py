"""Settings of the sessions service (env prefix ``CSMS_``, e.g. ``CSMS_UNKNOWN_STATION_POLICY``)."""

from pydantic import Field

from csms_api.auth import AuthSettings
from csms_core.settings import CommonSettings, UnknownStationPolicy

__all__ = ["SessionsSettings", "UnknownStationPolicy"]


class SessionsSettings(CommonSettings, AuthSettings):
    """What the sessions service reads on top of the common settings."""

    # How to answer the BootNotification of a station nobody registered over REST.
    # The embedded `csms` command sets "accept" so a developer's simulator just works.
    unknown_station_policy: UnknownStationPolicy = "reject"
    heartbeat_interval_s: int = Field(default=300, ge=1)
    # OCPP 2.0.1 B02/B03: a Pending or Rejected station boots again after this interval.
    pending_retry_interval_s: int = Field(default=30, ge=1)
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    consumer_group: str = "csms-sessions"
    # `csms sessions` in 2 processes: the REST API in the one started, the consumer in a
    # child process it supervises, so a request never waits behind a consumer batch on one
    # event loop (docs/operators.md); 1: both on one event loop.
    sessions_processes: int = Field(default=1, ge=1, le=2)
    # In 2 processes, a consumer process that ends on its own is started again after a
    # back-off (doubled for each other restart within the window); more restarts than this
    # within the window stop the replica, exit status 1 (docs/operators.md, Scaling).
    consumer_process_restarts: int = Field(default=5, ge=0)
    consumer_process_restart_window_s: float = Field(default=60.0, gt=0)
    consumer_process_restart_backoff_s: float = Field(default=1.0, ge=0)
    # Its batched consumer (csms_core.settings for the meaning): larger polls and
    # transactions than the other services', and polling while a poll is applied
    # (measured: bench/RESULTS.md, issue 10 item 3).
    consumer_batch_records: int = Field(default=4000, ge=1, le=10_000)
    consumer_batch_transaction: int = Field(default=2000, ge=1, le=5_000)
    consumer_poll_ahead: bool = True
    # A poll of fewer records goes in one transaction, its lanes together (a low rate's
    # small polls: measured, bench/RESULTS.md "lag3").
    consumer_batch_lanes_from: int = Field(default=200, ge=0, le=10_000)
    # Local authorization lists: entries per SendLocalList (1.6 SendLocalListMaxLength,
    # 2.0.1 ItemsPerMessageSendLocalList; a longer list goes as Full + Differentials),
    # how often pending lists are looked for, and the back-off after a failed send.
    local_list_items_per_message: int = Field(default=100, ge=1)
    local_list_sync_interval_s: float = Field(default=10.0, gt=0)
    local_list_retry_s: float = Field(default=60.0, ge=0)
    # No phantom sessions (docs/sessions.md): an active session whose EVSE the station
    # reported Available this long ago is resolved (2.x: after asking the station with
    # GetTransactionStatus); how often that is looked for.
    session_idle_grace_s: float = Field(default=300.0, ge=0)
    session_resolution_interval_s: float = Field(default=30.0, gt=0)
    # A device-model report whose last part has not come this long after its latest
    # part (or the request) is incomplete (its missing parts listed; repeat it over REST).
    report_part_timeout_s: float = Field(default=600.0, gt=0)
    # The audit trail (GET /api/v1/audit, csms.audit) is kept this long.
    audit_retention_days: float = Field(default=365.0, gt=0)
    # The events stations notified (NotifyEvent: GET /api/v1/stations/{id}/events) are
    # kept this long after they were received.
    station_event_retention_days: float = Field(default=90.0, gt=0)

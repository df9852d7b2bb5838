"""The states of a campaign and of each of its stations, and how OCPP statuses map to them."""

from enum import StrEnum


class CampaignState(StrEnum):
    SCHEDULED = "scheduled"  # waits for its starts_at
    RUNNING = "running"
    PAUSED = "paused"  # by an operator, or at its failure threshold
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class StationState(StrEnum):
    PENDING = "pending"  # waits for its wave, its window, a download slot or to come online
    DISPATCHING = "dispatching"  # UpdateFirmware on its way
    SENT = "sent"  # accepted; no status yet
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"  # includes signature verified and install scheduled
    INSTALLING = "installing"  # includes installed: only its boot tells the version
    SUCCEEDED = "succeeded"  # booted reporting the image's version
    FAILED = "failed"  # out of retries, or a failure retrying cannot mend
    SKIPPED = "skipped"  # already on the version, or the campaign ended before its turn
    CANCELLED = "cancelled"


TERMINAL = frozenset(
    {StationState.SUCCEEDED, StationState.FAILED, StationState.SKIPPED, StationState.CANCELLED}
)
# Holding one of the download slots the concurrency cap counts.
DOWNLOAD_SLOT = frozenset({StationState.DISPATCHING, StationState.SENT, StationState.DOWNLOADING})
# An update the station works on: silence while here is an attempt gone quiet.
IN_FLIGHT = frozenset(
    {
        StationState.DISPATCHING,
        StationState.SENT,
        StationState.DOWNLOADING,
        StationState.DOWNLOADED,
        StationState.INSTALLING,
    }
)

# FirmwareStatusEnumType (2.0.1 L01-L04; 1.6 FirmwareStatus, whitepaper Signed...).
PROGRESS: dict[str, StationState] = {
    "DownloadScheduled": StationState.DOWNLOADING,
    "Downloading": StationState.DOWNLOADING,
    "DownloadPaused": StationState.DOWNLOADING,
    "Downloaded": StationState.DOWNLOADED,
    "SignatureVerified": StationState.DOWNLOADED,
    "InstallScheduled": StationState.DOWNLOADED,
    "Installing": StationState.INSTALLING,
    "InstallRebooting": StationState.INSTALLING,
    "Installed": StationState.INSTALLING,
}
# Failures worth another attempt, and those another attempt cannot mend.
RETRYABLE_FAILURES = frozenset({"DownloadFailed", "InstallationFailed"})
FINAL_FAILURES = frozenset({"InvalidSignature", "InstallVerificationFailed"})
# UpdateFirmware answers (2.x UpdateFirmwareStatusEnumType, 1.6 UpdateFirmwareStatusEnumType).
ACCEPTED_ANSWERS = frozenset({"Accepted", "AcceptedCanceled"})
FINAL_REFUSALS = frozenset({"InvalidCertificate", "RevokedCertificate"})

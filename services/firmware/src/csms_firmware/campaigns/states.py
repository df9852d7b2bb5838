"""The states of a campaign and of each of its stations, and how OCPP statuses map to them."""

# The states are part of the csms.firmware contract: defined with its events in libs.
from csms_core.events.firmware import CampaignState, StationState

__all__ = ["CampaignState", "StationState"]

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

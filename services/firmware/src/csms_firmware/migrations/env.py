from csms_core.db import run_migrations_online
from csms_firmware import models
from csms_firmware.campaigns import models as campaign_models
from csms_firmware.catalogue import models as catalogue_models
from csms_firmware.logs import models as log_models
from csms_firmware.stations import models as station_models

# Every table of the service shares SQLModel's metadata.
assert (  # noqa: S101
    models.OutboxRecord.metadata
    is campaign_models.Campaign.metadata
    is catalogue_models.FirmwareImage.metadata
    is log_models.LogRequest.metadata
    is station_models.FirmwareStation.metadata
)
run_migrations_online(models.OutboxRecord.metadata)

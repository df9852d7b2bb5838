"""Settings of the billing service (env prefix ``CSMS_``, billing's own under ``CSMS_BILLING_``)."""

from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from csms_api.auth import AuthSettings
from csms_core.settings import CommonSettings, Environment


class BillingSettings(CommonSettings, AuthSettings):
    """What the billing service reads on top of the common settings."""

    model_config = SettingsConfigDict(env_prefix="CSMS_", extra="ignore", populate_by_name=True)

    api_host: str = "127.0.0.1"
    # Prefixed, so that one environment can serve sessions, smart charging and billing.
    api_port: int = Field(default=8004, ge=1, le=65535, validation_alias="CSMS_BILLING_API_PORT")
    consumer_group: str = Field(
        default="csms-billing", validation_alias="CSMS_BILLING_CONSUMER_GROUP"
    )
    # The CPO this CSMS is, in OCPI terms: every tariff and CDR carries it.
    country_code: str = Field(
        default="NL", min_length=2, max_length=2, validation_alias="CSMS_BILLING_COUNTRY_CODE"
    )
    party_id: str = Field(
        default="CSM", min_length=3, max_length=3, validation_alias="CSMS_BILLING_PARTY_ID"
    )
    # The currency a session no tariff applies to is shown in (at no known cost).
    currency: str = Field(
        default="EUR", min_length=3, max_length=3, validation_alias="CSMS_BILLING_CURRENCY"
    )
    # Where a tariff names no time zone, its times of day and dates are read in this one.
    time_zone: str = Field(default="UTC", validation_alias="CSMS_BILLING_TIME_ZONE")
    # A session's CDR is issued this long after its end arrives: samples the sessions service
    # published just before the end (another topic, so maybe read later) still count.
    cdr_settle_s: float = Field(default=0.5, ge=0, validation_alias="CSMS_BILLING_CDR_SETTLE_S")

    # OCPP 2.0.1 I02 (TC_I_01): how often a 2.x station is sent a live session's running cost.
    cost_update_interval_s: float = Field(
        default=60.0, ge=0.1, validation_alias="CSMS_BILLING_COST_UPDATE_INTERVAL_S"
    )

    # The payment provider of web / QR payments (payments.provider): the secret its webhook
    # signatures are made with, and its API, asked to confirm a payment (optional).
    payment_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="CSMS_BILLING_PAYMENT_WEBHOOK_SECRET"
    )
    payment_provider_url: str | None = Field(
        default=None, validation_alias="CSMS_BILLING_PAYMENT_PROVIDER_URL"
    )
    # How long a driver who started a web payment has to pay (NotifyWebPaymentStarted's
    # timeout) when the provider's webhook names no time of its own.
    web_payment_timeout_s: int = Field(
        default=300, ge=10, le=3600, validation_alias="CSMS_BILLING_WEB_PAYMENT_TIMEOUT_S"
    )
    # A VAT registry (payments.vat): 2.1 VatNumberValidation is answered Rejected without one.
    vat_registry_url: str | None = Field(
        default=None, validation_alias="CSMS_BILLING_VAT_REGISTRY_URL"
    )
    # OCA California Pricing (costs.california): stations that take the costmsg customData
    # without reporting it in their device model, comma separated.
    california_stations: str = Field(
        default="", validation_alias="CSMS_BILLING_CALIFORNIA_STATIONS"
    )
    # Where drivers open the receipts of settlements (``{base}/receipts/{id}``): the public
    # address of a billing replica (or of ``csms up``).
    receipt_base_url: str = Field(
        default="http://127.0.0.1:8000", validation_alias="CSMS_BILLING_RECEIPT_BASE_URL"
    )

    @model_validator(mode="after")
    def _no_placeholder_secret(self) -> Self:
        secret = self.payment_webhook_secret
        if (
            self.environment is Environment.PRODUCTION
            and secret is not None
            and (len(secret.get_secret_value()) < 32 or "change" in secret.get_secret_value())
        ):
            raise ValueError(
                "CSMS_BILLING_PAYMENT_WEBHOOK_SECRET must be the provider's real secret "
                "(32 characters at least) outside development"
            )
        return self

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

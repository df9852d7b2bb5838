"""Settings of the security service (env prefix ``CSMS_``, most of them ``CSMS_SECURITY_...``).

The CA key is read from a file (or created in ``ca_dir`` on first start); it is never
a setting itself, so it cannot end up in an environment dump or a log line.
"""

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from csms_api.auth import AuthSettings
from csms_core.settings import CommonSettings


class SecuritySettings(CommonSettings, AuthSettings):
    """What the security service reads on top of the common settings."""

    model_config = SettingsConfigDict(env_prefix="CSMS_", extra="ignore", populate_by_name=True)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8002, ge=1, le=65535, validation_alias="CSMS_SECURITY_API_PORT")
    # Its own group: a shared CSMS_CONSUMER_GROUP (the sessions one) must not capture it.
    consumer_group: str = Field(
        default="csms-security", validation_alias="CSMS_SECURITY_CONSUMER_GROUP"
    )

    # -- the station certificate authority ---------------------------------------------------
    # The operator's CA: its certificate (PEM; issuers that follow it are the chain sent to
    # stations) and its private key (PEM, optionally encrypted). Both or neither.
    ca_cert_file: Path | None = Field(default=None, validation_alias="CSMS_SECURITY_CA_CERT_FILE")
    ca_key_file: Path | None = Field(default=None, validation_alias="CSMS_SECURITY_CA_KEY_FILE")
    ca_key_password: SecretStr | None = Field(
        default=None, validation_alias="CSMS_SECURITY_CA_KEY_PASSWORD"
    )
    # Without the files: a CA created here on first start (ca.pem, ca-key.pem mode 0600).
    ca_dir: Path = Field(default=Path("csms-data/ca"), validation_alias="CSMS_SECURITY_CA_DIR")
    # The O of every station certificate (OCPP 2.0.1 A00: SecurityCtrlr.OrganizationName)
    # and of a CA created here; an operator's CA must carry the same O.
    organization: str = Field(
        default="CSMS", min_length=1, max_length=64, validation_alias="CSMS_SECURITY_ORGANIZATION"
    )
    ca_validity_days: int = Field(default=3650, ge=1, validation_alias="CSMS_SECURITY_CA_DAYS")
    certificate_validity_days: int = Field(
        default=365, ge=1, validation_alias="CSMS_SECURITY_CERTIFICATE_DAYS"
    )
    # A station whose certificate expires within this is asked for a new CSR.
    renew_before_days: float = Field(
        default=30.0, gt=0, validation_alias="CSMS_SECURITY_RENEW_BEFORE_DAYS"
    )
    renewal_check_interval_s: float = Field(
        default=3600.0, gt=0, validation_alias="CSMS_SECURITY_RENEWAL_CHECK_S"
    )
    # A renewal asked for is not asked again before this (the station may be offline).
    renewal_retry_s: float = Field(
        default=86400.0, ge=0, validation_alias="CSMS_SECURITY_RENEWAL_RETRY_S"
    )

    # A station accepted at boot whose list of installed CA certificates is older than this
    # is asked for it again (GetInstalledCertificateIds); 0: only when asked over REST.
    inventory_max_age_s: float = Field(
        default=86400.0, ge=0, validation_alias="CSMS_SECURITY_INVENTORY_MAX_AGE_S"
    )

    # -- an external CA (EST, RFC 7030) instead of the local one ------------------------------
    est_url: str | None = Field(default=None, validation_alias="CSMS_SECURITY_EST_URL")
    # V2G (ISO 15118 SECC) certificates are signed by the V2G PKI when this is set.
    v2g_est_url: str | None = Field(default=None, validation_alias="CSMS_SECURITY_V2G_EST_URL")
    est_username: str | None = Field(default=None, validation_alias="CSMS_SECURITY_EST_USERNAME")
    est_password: SecretStr | None = Field(
        default=None, validation_alias="CSMS_SECURITY_EST_PASSWORD"
    )
    # The TLS trust anchors of the EST server (PEM); the system's when unset.
    est_ca_file: Path | None = Field(default=None, validation_alias="CSMS_SECURITY_EST_CA_FILE")
    est_timeout_s: float = Field(default=30.0, gt=0, validation_alias="CSMS_SECURITY_EST_TIMEOUT_S")

    # -- Plug & Charge ------------------------------------------------------------------------
    # The contract-certificate provider (Get15118EVCertificate); without it: Failed.
    contract_provider_url: str | None = Field(
        default=None, validation_alias="CSMS_SECURITY_CONTRACT_PROVIDER_URL"
    )
    contract_provider_token: SecretStr | None = Field(
        default=None, validation_alias="CSMS_SECURITY_CONTRACT_PROVIDER_TOKEN"
    )
    # V2G and MO roots and sub-CAs (PEM): OCSP answers and contract chains are checked
    # against them.
    pnc_trust_file: Path | None = Field(
        default=None, validation_alias="CSMS_SECURITY_PNC_TRUST_FILE"
    )
    # The PKI's answers must come in time for the station's CALL (the gateway's decision
    # timeout, 10 s by default).
    pki_timeout_s: float = Field(default=5.0, gt=0, validation_alias="CSMS_SECURITY_PKI_TIMEOUT_S")

    # OCSP responders and CRLs a station names are fetched only from public addresses
    # unless this is set (a PKI inside your network); never anything but http(s).
    pki_allow_private_addresses: bool = Field(
        default=False, validation_alias="CSMS_SECURITY_PKI_ALLOW_PRIVATE_ADDRESSES"
    )

    # -- security profile upgrades ------------------------------------------------------------
    # ocppCsmsUrl of the new network profile (2.x), without the station id, e.g.
    # wss://csms.example.com/ocpp/. A REST request may name another.
    csms_url: str | None = Field(default=None, validation_alias="CSMS_SECURITY_CSMS_URL")
    # An upgrade whose station has not come back with the new profile by then has failed.
    upgrade_timeout_s: float = Field(
        default=900.0, gt=0, validation_alias="CSMS_SECURITY_UPGRADE_TIMEOUT_S"
    )

    # Security events older than this are deleted (the audit of a year by default).
    event_retention_days: int = Field(
        default=365, ge=1, validation_alias="CSMS_SECURITY_EVENT_RETENTION_DAYS"
    )

    @model_validator(mode="after")
    def _ca_files_together(self) -> Self:
        if (self.ca_cert_file is None) != (self.ca_key_file is None):
            raise ValueError(
                "set both CSMS_SECURITY_CA_CERT_FILE and CSMS_SECURITY_CA_KEY_FILE (the "
                "operator's CA) or neither (a CA created in CSMS_SECURITY_CA_DIR)"
            )
        if self.renew_before_days >= self.certificate_validity_days:
            raise ValueError(
                "CSMS_SECURITY_RENEW_BEFORE_DAYS must be less than CSMS_SECURITY_CERTIFICATE_DAYS"
                " (or every certificate would be renewed as soon as it is issued)"
            )
        if (self.est_username is None) != (self.est_password is None):
            raise ValueError("set both CSMS_SECURITY_EST_USERNAME and CSMS_SECURITY_EST_PASSWORD")
        return self

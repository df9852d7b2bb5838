"""Station certificates: signing requests, the certificates issued, and what stations hold."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from csms_security.authority.ca import CertificateUse
from csms_security.db import SCHEMA, UtcDateTime, enum_column, utc_now


class SigningStatus(StrEnum):
    REJECTED = "rejected"  # the CSR failed its checks: SignCertificate was answered Rejected
    ACCEPTED = "accepted"  # answered Accepted; to be signed and sent
    SIGNED = "signed"  # signed; CertificateSigned not yet answered by the station
    DELIVERED = "delivered"  # the station accepted the certificate
    STATION_REJECTED = "station-rejected"  # the station refused it (CertificateSigned Rejected)
    FAILED = "failed"  # the signer refused, or it could not be delivered in time


class SigningRequest(SQLModel, table=True):
    """One SignCertificate of a station (its id is the id of the event that carried it)."""

    __tablename__ = "signing_request"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True, max_length=64)
    station_id: str = Field(index=True, max_length=48)
    ocpp_version: str = Field(max_length=8)
    certificate_use: CertificateUse = Field(sa_column=enum_column(CertificateUse))
    # OCPP 2.1 SignCertificateRequest.requestId, echoed in CertificateSigned.
    request_id: int | None = None
    csr: str = Field(sa_type=Text)
    status: SigningStatus = Field(sa_column=enum_column(SigningStatus, index=True))
    reason: str | None = None
    serial: str | None = Field(default=None, max_length=40)
    attempts: int = 0
    # When the issuer may next work on it (back-off; another replica's claim).
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    received_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class CertificateStatus(StrEnum):
    ISSUED = "issued"  # signed, not (yet) accepted by the station
    ACTIVE = "active"  # the station accepted it
    REJECTED = "rejected"  # the station refused it
    SUPERSEDED = "superseded"  # a newer one of the same use became active
    REVOKED = "revoked"


class StationCertificate(SQLModel, table=True):
    """A certificate the CSMS issued (or had issued) for a station."""

    __tablename__ = "station_certificate"
    __table_args__ = {"schema": SCHEMA}

    serial: str = Field(primary_key=True, max_length=40)  # hex, as OCPP writes serials
    station_id: str = Field(index=True, max_length=48)
    certificate_use: CertificateUse = Field(sa_column=enum_column(CertificateUse))
    subject: str
    issuer: str  # the issuer's subject (a rotated CA issues under another name or key)
    # The issuing CA's key identifier (the leaf's authorityKeyIdentifier, hex): a
    # certificate of a CA other than the current one is renewed (CA rotation).
    issuer_key_id: str = Field(max_length=64)
    signer: str = Field(max_length=16)  # local | est
    not_before: datetime = Field(sa_type=UtcDateTime)
    not_after: datetime = Field(sa_type=UtcDateTime, index=True)
    fingerprint_sha256: str = Field(max_length=64)
    certificate_pem: str = Field(sa_type=Text)
    status: CertificateStatus = Field(sa_column=enum_column(CertificateStatus, index=True))
    signing_request_id: str | None = Field(default=None, max_length=64)
    issued_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    renewal_requested_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class InstalledCertificate(SQLModel, table=True):
    """A CA certificate a station reported holding (GetInstalledCertificateIds)."""

    __tablename__ = "installed_certificate"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True, max_length=32)  # derived from station, use and hashes
    station_id: str = Field(index=True, max_length=48)
    # The station's own type name (1.6 CentralSystemRootCertificate, 2.x CSMSRootCertificate).
    certificate_type: str = Field(max_length=40)
    hash_algorithm: str = Field(max_length=8)
    issuer_name_hash: str = Field(max_length=128)
    issuer_key_hash: str = Field(max_length=128)
    serial_number: str = Field(max_length=40)
    # For a V2GCertificateChain: the entry whose child certificate (sub-CA) this is.
    parent_id: str | None = Field(default=None, max_length=32)
    reported_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class InventoryRefresh(SQLModel, table=True):
    """When a station's installed certificates were last asked for, and in which version."""

    __tablename__ = "inventory_refresh"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    ocpp_version: str = Field(max_length=8)
    refreshed_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)

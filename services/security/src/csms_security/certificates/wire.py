"""The certificate messages as each OCPP version spells them.

1.6 (security whitepaper) names the CSMS root ``CentralSystemRootCertificate``
and knows only it and ``ManufacturerRootCertificate``; it signs one kind of
station certificate (no ``certificateType``) and asks for it with
ExtendedTriggerMessage ``SignChargePointCertificate``. 2.0.1 has ``CSMSRootCertificate``,
``V2GRootCertificate``, ``MORootCertificate`` and ``ManufacturerRootCertificate``
(plus ``V2GCertificateChain`` to list); 2.1 adds ``OEMRootCertificate`` and the
ISO 15118-20 ``V2G20Certificate``, and echoes a SignCertificate's ``requestId``.
"""

from enum import StrEnum
from typing import Any

from csms_ocpp import OcppVersion
from csms_security.authority.ca import CertificateUse


class Untranslatable(ValueError):
    """The request has no equivalent in the station's OCPP version."""


class CaCertificateType(StrEnum):
    """A CA certificate a station can hold; REST uses the 2.x names."""

    CSMS_ROOT = "CSMSRootCertificate"
    MANUFACTURER_ROOT = "ManufacturerRootCertificate"
    V2G_ROOT = "V2GRootCertificate"
    MO_ROOT = "MORootCertificate"
    OEM_ROOT = "OEMRootCertificate"
    V2G_CHAIN = "V2GCertificateChain"  # listed and deleted only: the station's own V2G chain

    @classmethod
    def parse(cls, name: str) -> "CaCertificateType":
        """A 2.x name, or the 1.6 one (``CentralSystemRootCertificate``)."""
        return cls.CSMS_ROOT if name == CENTRAL_SYSTEM_ROOT else cls(name)


CENTRAL_SYSTEM_ROOT = "CentralSystemRootCertificate"
_V16 = {
    CaCertificateType.CSMS_ROOT: CENTRAL_SYSTEM_ROOT,
    CaCertificateType.MANUFACTURER_ROOT: "ManufacturerRootCertificate",
}
_INSTALLABLE_201 = frozenset(
    {
        CaCertificateType.CSMS_ROOT,
        CaCertificateType.MANUFACTURER_ROOT,
        CaCertificateType.V2G_ROOT,
        CaCertificateType.MO_ROOT,
    }
)
_INSTALLABLE_21 = _INSTALLABLE_201 | {CaCertificateType.OEM_ROOT}


def wire_type(version: OcppVersion, certificate_type: CaCertificateType, *, listing: bool) -> str:
    """The name of ``certificate_type`` in ``version`` (``listing``: GetInstalledCertificateIds)."""
    if version is OcppVersion.V16:
        if certificate_type not in _V16:
            raise Untranslatable(
                f"OCPP 1.6 stations hold no {certificate_type.value}; they know "
                f"{', '.join(_V16.values())}"
            )
        return _V16[certificate_type]
    known = _INSTALLABLE_21 if version is OcppVersion.V21 else _INSTALLABLE_201
    if certificate_type in known or (listing and certificate_type is CaCertificateType.V2G_CHAIN):
        return certificate_type.value
    raise Untranslatable(f"{certificate_type.value} is not in OCPP {version.number}")


def all_types(version: OcppVersion) -> list[CaCertificateType]:
    """Every type a station of ``version`` can list."""
    if version is OcppVersion.V16:
        return list(_V16)
    installable = _INSTALLABLE_21 if version is OcppVersion.V21 else _INSTALLABLE_201
    return [t for t in CaCertificateType if t in installable or t is CaCertificateType.V2G_CHAIN]


def install_certificate(
    version: OcppVersion, certificate_type: CaCertificateType, certificate_pem: str
) -> dict[str, Any]:
    return {
        "certificateType": wire_type(version, certificate_type, listing=False),
        "certificate": certificate_pem,
    }


def get_installed_certificate_ids(
    version: OcppVersion, types: list[CaCertificateType]
) -> list[dict[str, Any]]:
    """The request(s) that list ``types``: 1.6 takes one type per request, 2.x a list."""
    if version is OcppVersion.V16:
        return [{"certificateType": wire_type(version, t, listing=True)} for t in types]
    return [{"certificateType": [wire_type(version, t, listing=True) for t in types]}]


def certificate_signed(
    version: OcppVersion, chain_pem: str, use: CertificateUse, request_id: int | None
) -> dict[str, Any]:
    """CertificateSigned for a chain signed for ``use`` (Combined: no certificateType)."""
    payload: dict[str, Any] = {"certificateChain": chain_pem}
    if version is OcppVersion.V16:
        return payload
    if use is not CertificateUse.COMBINED:
        payload["certificateType"] = use.value
    if version is OcppVersion.V21 and request_id is not None:
        payload["requestId"] = request_id
    return payload


def signing_use(version: OcppVersion, certificate_type: str | None) -> CertificateUse:
    """What a SignCertificate asks for: 1.6 has one kind; 2.x without a type means both."""
    if version is OcppVersion.V16:
        return CertificateUse.CHARGING_STATION
    return CertificateUse(certificate_type) if certificate_type else CertificateUse.COMBINED


def renewal_trigger(version: OcppVersion, use: CertificateUse) -> tuple[str, dict[str, Any]]:
    """The call that asks a station for a new CSR (2.0.1 A02, 1.6 whitepaper use case A02)."""
    if version is OcppVersion.V16:
        return "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
    requested = {
        CertificateUse.CHARGING_STATION: "SignChargingStationCertificate",
        CertificateUse.V2G: "SignV2GCertificate",
        CertificateUse.V2G20: "SignV2G20Certificate",
        CertificateUse.COMBINED: "SignCombinedCertificate",
    }[use]
    if use is CertificateUse.V2G20 and version is not OcppVersion.V21:
        raise Untranslatable("V2G20Certificate is OCPP 2.1 only")
    return "TriggerMessage", {"requestedMessage": requested}

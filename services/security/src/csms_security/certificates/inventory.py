"""The CA certificates a station holds: install, list (and keep), delete (2.0.1 M03-M05,
1.6 whitepaper "Certificate management")."""

import hashlib
from typing import Any

from cryptography import x509
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.router import Build, CommandResult
from csms_ocpp import OcppVersion
from csms_security.calls import StationCalls, accepted
from csms_security.certificates import wire
from csms_security.certificates.models import InstalledCertificate, InventoryRefresh
from csms_security.certificates.wire import CaCertificateType
from csms_security.db import utc_now
from csms_security.hashdata import ReportedHashData


class BadCertificate(ValueError):
    """What an operator asked to install is not one PEM certificate."""


def inventory_id(station_id: str, certificate_type: str, data: ReportedHashData) -> str:
    key = "|".join(
        (
            station_id,
            certificate_type,
            data.hash_algorithm.value,
            data.issuer_name_hash.lower(),
            data.issuer_key_hash.lower(),
            data.serial_key,
        )
    )
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def check_pem(certificate_pem: str) -> x509.Certificate:
    try:
        certificates = x509.load_pem_x509_certificates(certificate_pem.encode())
    except ValueError as exc:
        raise BadCertificate(f"not a PEM certificate: {exc}") from exc
    if len(certificates) != 1:
        raise BadCertificate(f"one certificate expected, {len(certificates)} given")
    return certificates[0]


async def refresh(
    session: AsyncSession,
    calls: StationCalls,
    station_id: str,
    types: list[CaCertificateType] | None,
    *,
    timeout_s: float | None = None,
) -> list[CommandResult]:
    """Ask the station what it holds (``types``, or everything) and store that."""
    version = await calls.version(station_id)
    asked = types or wire.all_types(version)
    requests = wire.get_installed_certificate_ids(version, asked)
    if version.is_2x and types is None:
        requests = [{}]  # 2.x: no certificateType asks for every type
    results = []
    for request in requests:
        result = await calls.call(
            station_id, _as_is("GetInstalledCertificateIds", request), timeout_s
        )
        results.append(result)
        if not accepted(result, "Accepted", "NotFound"):
            continue
        wire_types = _asked_types(version, request, asked)
        await session.exec(
            delete(InstalledCertificate).where(
                col(InstalledCertificate.station_id) == station_id,
                col(InstalledCertificate.certificate_type).in_(wire_types),
            )
        )
        for row in _rows(station_id, version, request, result.payload or {}):
            await session.merge(row)
    state = await session.get(InventoryRefresh, station_id) or InventoryRefresh(
        station_id=station_id, ocpp_version=version.number
    )
    state.ocpp_version, state.refreshed_at = version.number, utc_now()
    session.add(state)
    await session.commit()
    return results


def _asked_types(
    version: OcppVersion, request: dict[str, Any], asked: list[CaCertificateType]
) -> list[str]:
    requested = request.get("certificateType")
    if isinstance(requested, str):  # 1.6: one per request
        return [requested]
    if isinstance(requested, list):
        return [str(name) for name in requested]
    return [wire.wire_type(version, t, listing=True) for t in asked]


def _rows(
    station_id: str, version: OcppVersion, request: dict[str, Any], answer: dict[str, Any]
) -> list[InstalledCertificate]:
    if version is OcppVersion.V16:
        certificate_type = str(request["certificateType"])
        return [
            _row(station_id, certificate_type, ReportedHashData.model_validate(data), None)
            for data in answer.get("certificateHashData") or []
        ]
    rows: list[InstalledCertificate] = []
    for chain in answer.get("certificateHashDataChain") or []:
        certificate_type = str(chain["certificateType"])
        parent = _row(
            station_id,
            certificate_type,
            ReportedHashData.model_validate(chain["certificateHashData"]),
            None,
        )
        rows.append(parent)
        for child in chain.get("childCertificateHashData") or []:
            data = ReportedHashData.model_validate(child)
            rows.append(_row(station_id, certificate_type, data, parent.id))
    return rows


def _row(
    station_id: str, certificate_type: str, data: ReportedHashData, parent_id: str | None
) -> InstalledCertificate:
    return InstalledCertificate(
        id=inventory_id(station_id, certificate_type, data),
        station_id=station_id,
        certificate_type=certificate_type,
        hash_algorithm=data.hash_algorithm.value,
        issuer_name_hash=data.issuer_name_hash,
        issuer_key_hash=data.issuer_key_hash,
        serial_number=data.serial_number,
        parent_id=parent_id,
    )


async def install(
    calls: StationCalls, station_id: str, certificate_type: CaCertificateType, certificate_pem: str
) -> CommandResult:
    check_pem(certificate_pem)
    return await calls.call(
        station_id,
        lambda version: (
            "InstallCertificate",
            wire.install_certificate(version, certificate_type, certificate_pem),
        ),
    )


async def remove(
    session: AsyncSession, calls: StationCalls, row: InstalledCertificate
) -> CommandResult:
    """DeleteCertificate; the row (and its children) go once the station has it no more."""
    data = ReportedHashData(
        hash_algorithm=row.hash_algorithm,
        issuer_name_hash=row.issuer_name_hash,
        issuer_key_hash=row.issuer_key_hash,
        serial_number=row.serial_number,
    )
    payload = {"certificateHashData": data.wire()}
    result = await calls.call(row.station_id, _as_is("DeleteCertificate", payload))
    if accepted(result, "Accepted", "NotFound"):
        await session.exec(
            delete(InstalledCertificate).where(
                (col(InstalledCertificate.id) == row.id)
                | (col(InstalledCertificate.parent_id) == row.id)
            )
        )
        await session.commit()
    return result


def _as_is(action: str, payload: dict[str, Any]) -> Build:
    """A call whose payload is the same in every version."""

    def build(_version: OcppVersion) -> tuple[str, dict[str, Any]]:
        return action, payload

    return build


async def installed(session: AsyncSession, station_id: str) -> list[InstalledCertificate]:
    rows = await session.exec(
        select(InstalledCertificate)
        .where(InstalledCertificate.station_id == station_id)
        .order_by(col(InstalledCertificate.certificate_type), col(InstalledCertificate.id))
    )
    return list(rows.all())

"""Stations that take part in the security block, played by the ``ocpp`` package's client.

Each version's station makes its own key and CSR, signs when triggered, accepts the
certificate the CSMS sends (or refuses it), holds CA certificates (install, list,
delete), and follows a security profile upgrade (it records the calls; the test
reconnects it with the new profile, as a station's reboot would).
"""

import asyncio
import base64
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ocpp.v16
import ocpp.v21
import ocpp.v201
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.routing import on
from websockets.asyncio.client import connect

from csms_security.hashdata import hash_data
from tests.stations import SUBPROTOCOL, basic_auth


@dataclass
class StationState:
    """What a station holds across its connections (it survives a reconnect)."""

    station_id: str
    organization: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    common_name: str | None = None  # None: the station id
    chain_pem: str | None = None  # the certificate (and chain) it was sent last
    refuse_certificates: bool = False
    base64_hashes: bool = False  # reports hash data in base64, as some stations do
    installed: dict[str, list[x509.Certificate]] = field(default_factory=dict)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    reset: asyncio.Event = field(default_factory=asyncio.Event)
    certificate_signed: asyncio.Event = field(default_factory=asyncio.Event)

    def csr(self) -> str:
        subject = x509.Name(
            [
                x509.NameAttribute(x509.NameOID.COMMON_NAME, self.common_name or self.station_id),
                x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, self.organization),
            ]
        )
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(subject)
            .sign(self.key, hashes.SHA256())
        )
        return request.public_bytes(serialization.Encoding.PEM).decode()

    def tls(
        self, server_ca: ssl.SSLContext | None = None, *, with_certificate: bool
    ) -> ssl.SSLContext:
        """The TLS context: trusting ``server_ca``'s anchors; presenting its certificate."""
        context = server_ca or ssl.create_default_context()
        if with_certificate:
            assert self.chain_pem is not None, "the station holds no certificate yet"
            with tempfile.TemporaryDirectory() as directory:
                cert_file = Path(directory) / "cert.pem"
                key_file = Path(directory) / "key.pem"
                cert_file.write_text(self.chain_pem)
                key_file.write_bytes(
                    self.key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                )
                context.load_cert_chain(cert_file, key_file)
        return context

    def certificate(self) -> x509.Certificate:
        assert self.chain_pem is not None
        return x509.load_pem_x509_certificates(self.chain_pem.encode())[0]

    def hash_list(self, types: list[str] | None) -> list[tuple[str, dict[str, str]]]:
        return [
            (certificate_type, self._reported(hash_data(certificate, certificate).wire()))
            for certificate_type, certificates in self.installed.items()
            if types is None or certificate_type in types
            for certificate in certificates
        ]

    def _reported(self, wire: dict[str, str]) -> dict[str, str]:
        if not self.base64_hashes:
            return wire
        encoded = {
            name: base64.b64encode(bytes.fromhex(wire[name])).decode()
            for name in ("issuerNameHash", "issuerKeyHash")
        }
        return wire | encoded


def _snake(hash_fields: dict[str, str]) -> dict[str, str]:
    return {
        "hash_algorithm": hash_fields["hashAlgorithm"],
        "issuer_name_hash": hash_fields["issuerNameHash"],
        "issuer_key_hash": hash_fields["issuerKeyHash"],
        "serial_number": hash_fields["serialNumber"],
    }


class _Security:
    """Handlers every version shares (the ocpp package passes snake_case keyword arguments)."""

    state: StationState
    _tasks: set[asyncio.Task[Any]]

    def _record(self, action: str, **payload: Any) -> None:
        self.state.received.append((action, payload))

    def _later(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take_certificate(self, certificate_chain: str) -> str:
        if self.state.refuse_certificates:
            return "Rejected"
        certificates = x509.load_pem_x509_certificates(certificate_chain.encode())
        if certificates[0].public_key() != self.state.key.public_key():
            return "Rejected"  # not for our key (2.0.1 A02.FR.xx)
        self.state.chain_pem = certificate_chain
        self.state.certificate_signed.set()
        return "Accepted"

    def _install(self, certificate_type: str, certificate: str) -> str:
        try:
            parsed = x509.load_pem_x509_certificate(certificate.encode())
        except ValueError:
            return "Rejected"
        self.state.installed.setdefault(certificate_type, []).append(parsed)
        return "Accepted"

    def _delete(self, certificate_hash_data: dict[str, str]) -> str:
        for certificates in self.state.installed.values():
            for certificate in certificates:
                mine = _snake(hash_data(certificate, certificate).wire())
                if mine["serial_number"] == certificate_hash_data["serial_number"]:
                    certificates.remove(certificate)
                    return "Accepted"
        return "NotFound"


class SecureStation16(ocpp.v16.ChargePoint, _Security):  # type: ignore[misc]
    async def sign(self, certificate_type: None = None) -> Any:
        """1.6 signs one kind of certificate: there is no certificateType."""
        return await self.call(ocpp.v16.call.SignCertificate(csr=self.state.csr()))

    @on("CertificateSigned")  # type: ignore[untyped-decorator]
    def on_certificate_signed(self, certificate_chain: str) -> Any:
        self._record("CertificateSigned", certificate_chain=certificate_chain)
        return ocpp.v16.call_result.CertificateSigned(
            status=self._take_certificate(certificate_chain)
        )

    @on("ExtendedTriggerMessage")  # type: ignore[untyped-decorator]
    def on_extended_trigger_message(self, requested_message: str, **rest: Any) -> Any:
        self._record("ExtendedTriggerMessage", requested_message=requested_message, **rest)
        if requested_message == "SignChargePointCertificate":
            self._later(self.sign())
        return ocpp.v16.call_result.ExtendedTriggerMessage(status="Accepted")

    @on("InstallCertificate")  # type: ignore[untyped-decorator]
    def on_install_certificate(self, certificate_type: str, certificate: str) -> Any:
        self._record("InstallCertificate", certificate_type=certificate_type)
        return ocpp.v16.call_result.InstallCertificate(
            status=self._install(certificate_type, certificate)
        )

    @on("GetInstalledCertificateIds")  # type: ignore[untyped-decorator]
    def on_get_installed_certificate_ids(self, certificate_type: str) -> Any:
        self._record("GetInstalledCertificateIds", certificate_type=certificate_type)
        found = [_snake(data) for _, data in self.state.hash_list([certificate_type])]
        if not found:
            return ocpp.v16.call_result.GetInstalledCertificateIds(status="NotFound")
        return ocpp.v16.call_result.GetInstalledCertificateIds(
            status="Accepted", certificate_hash_data=found
        )

    @on("DeleteCertificate")  # type: ignore[untyped-decorator]
    def on_delete_certificate(self, certificate_hash_data: dict[str, str]) -> Any:
        self._record("DeleteCertificate", certificate_hash_data=certificate_hash_data)
        return ocpp.v16.call_result.DeleteCertificate(status=self._delete(certificate_hash_data))

    refuse_configuration = False

    @on("ChangeConfiguration")  # type: ignore[untyped-decorator]
    def on_change_configuration(self, key: str, value: str) -> Any:
        self._record("ChangeConfiguration", key=key, value=value)
        status = "Rejected" if self.refuse_configuration else "Accepted"
        return ocpp.v16.call_result.ChangeConfiguration(status=status)

    @on("Reset")  # type: ignore[untyped-decorator]
    def on_reset(self, type: str) -> Any:
        self._record("Reset", type=type)
        self.state.reset.set()
        return ocpp.v16.call_result.Reset(status="Accepted")


class _Station2x(_Security):
    module: Any

    async def sign(self, certificate_type: str | None = None) -> Any:
        request = self.module.call.SignCertificate(
            csr=self.state.csr(), certificate_type=certificate_type
        )
        return await self.call(request)  # type: ignore[attr-defined]

    def _on_certificate_signed(self, certificate_chain: str, **rest: Any) -> Any:
        self._record("CertificateSigned", certificate_chain=certificate_chain, **rest)
        return self.module.call_result.CertificateSigned(
            status=self._take_certificate(certificate_chain)
        )

    def _on_trigger_message(self, requested_message: str, **rest: Any) -> Any:
        self._record("TriggerMessage", requested_message=requested_message, **rest)
        kinds = {
            "SignChargingStationCertificate": "ChargingStationCertificate",
            "SignV2GCertificate": "V2GCertificate",
            "SignCombinedCertificate": None,
        }
        if requested_message in kinds:
            self._later(self.sign(kinds[requested_message]))
        return self.module.call_result.TriggerMessage(status="Accepted")

    def _on_install_certificate(self, certificate_type: str, certificate: str) -> Any:
        self._record("InstallCertificate", certificate_type=certificate_type)
        return self.module.call_result.InstallCertificate(
            status=self._install(certificate_type, certificate)
        )

    def _on_get_installed_certificate_ids(self, certificate_type: list[str] | None = None) -> Any:
        self._record("GetInstalledCertificateIds", certificate_type=certificate_type)
        found = [
            {"certificate_type": kind, "certificate_hash_data": _snake(data)}
            for kind, data in self.state.hash_list(certificate_type)
        ]
        if not found:
            return self.module.call_result.GetInstalledCertificateIds(status="NotFound")
        return self.module.call_result.GetInstalledCertificateIds(
            status="Accepted", certificate_hash_data_chain=found
        )

    def _on_delete_certificate(self, certificate_hash_data: dict[str, str]) -> Any:
        self._record("DeleteCertificate", certificate_hash_data=certificate_hash_data)
        return self.module.call_result.DeleteCertificate(status=self._delete(certificate_hash_data))

    def _on_get_variables(self, get_variable_data: list[dict[str, Any]]) -> Any:
        self._record("GetVariables", get_variable_data=get_variable_data)
        results = [
            {
                "attribute_status": "Accepted",
                "attribute_value": "1",
                "component": item["component"],
                "variable": item["variable"],
            }
            for item in get_variable_data
        ]
        return self.module.call_result.GetVariables(get_variable_result=results)

    def _on_set_variables(self, set_variable_data: list[dict[str, Any]]) -> Any:
        self._record("SetVariables", set_variable_data=set_variable_data)
        results = [
            {
                "attribute_status": "Accepted",
                "component": item["component"],
                "variable": item["variable"],
            }
            for item in set_variable_data
        ]
        return self.module.call_result.SetVariables(set_variable_result=results)

    def _on_set_network_profile(
        self, configuration_slot: int, connection_data: dict[str, Any]
    ) -> Any:
        self._record(
            "SetNetworkProfile",
            configuration_slot=configuration_slot,
            connection_data=connection_data,
        )
        return self.module.call_result.SetNetworkProfile(status="Accepted")

    def _on_reset(self, type: str, **rest: Any) -> Any:
        self._record("Reset", type=type, **rest)
        self.state.reset.set()
        return self.module.call_result.Reset(status="Accepted")


def _handlers_2x(base: type, module: Any) -> type:
    """A 2.x station class: the shared handlers routed under their action names."""

    class Station(base, _Station2x):  # type: ignore[misc]
        pass

    Station.module = module
    for action, method in (
        ("CertificateSigned", _Station2x._on_certificate_signed),
        ("TriggerMessage", _Station2x._on_trigger_message),
        ("InstallCertificate", _Station2x._on_install_certificate),
        ("GetInstalledCertificateIds", _Station2x._on_get_installed_certificate_ids),
        ("DeleteCertificate", _Station2x._on_delete_certificate),
        ("GetVariables", _Station2x._on_get_variables),
        ("SetVariables", _Station2x._on_set_variables),
        ("SetNetworkProfile", _Station2x._on_set_network_profile),
        ("Reset", _Station2x._on_reset),
    ):

        def handler(self: Any, _method: Any = method, **payload: Any) -> Any:
            return _method(self, **payload)

        # The ocpp package finds handlers by function name: one name per action.
        handler.__name__ = handler.__qualname__ = f"on_{action}"
        setattr(Station, handler.__name__, on(action)(handler))
    return Station


SecureStation201 = _handlers_2x(ocpp.v201.ChargePoint, ocpp.v201)
SecureStation21 = _handlers_2x(ocpp.v21.ChargePoint, ocpp.v21)
_CLASSES: dict[str, type] = {
    "1.6": SecureStation16,
    "2.0.1": SecureStation201,
    "2.1": SecureStation21,
}


@asynccontextmanager
async def secure_station(
    url: str,
    state: StationState,
    version: str,
    *,
    password: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[Any]:
    """A connected, running station client (``tls`` for wss://); closed on exit."""
    headers = basic_auth(state.station_id, password) if password else None
    async with connect(
        f"{url}/ocpp/{state.station_id}",
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        additional_headers=headers,
        ssl=tls,
        open_timeout=10,
    ) as websocket:
        client = _CLASSES[version](state.station_id, websocket)
        client.state = state
        client._tasks = set()
        runner = asyncio.create_task(client.start())
        try:
            yield client
        finally:
            runner.cancel()
            for task in list(client._tasks):
                task.cancel()
            await asyncio.gather(runner, *client._tasks, return_exceptions=True)

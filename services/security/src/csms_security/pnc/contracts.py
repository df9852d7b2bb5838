"""The contract-certificate provider behind Get15118EVCertificate (OCPP 2.0.1 M01/M02).

The EV's ISO 15118 CertificateInstallationReq / CertificateUpdateReq travels as
EXI (base64) from the station to us and on to the provider of contract
certificates (a mobility operator's PKI or a contract-certificate pool); its EXI
answer goes back unchanged. ``ContractProvider`` is the pluggable interface;
``HttpContractProvider`` speaks JSON over HTTPS with the OCPP field names:

    POST <url>  {"stationId", "iso15118SchemaVersion", "action", "exiRequest",
                 "maximumContractCertificateChains"?, "prioritizedEMAIDs"?}
    200         {"status": "Accepted" | "Failed", "exiResponse", "remainingContracts"?}

An adapter in front of any PKI's own API can offer exactly that.
"""

import logging
from typing import Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)


class ContractRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    station_id: str = Field(alias="stationId")
    # As the station sent it (a lenient station may exceed the schema's 50 characters).
    iso15118_schema_version: str = Field(alias="iso15118SchemaVersion")
    action: Literal["Install", "Update"]
    exi_request: str = Field(alias="exiRequest")
    maximum_contract_certificate_chains: int | None = Field(
        default=None, alias="maximumContractCertificateChains", ge=0
    )
    prioritized_emaids: list[str] | None = Field(default=None, alias="prioritizedEMAIDs")


class ContractResponse(BaseModel):
    """The provider's answer, as the station gets it (Get15118EVCertificateResponse)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    status: Literal["Accepted", "Failed"]
    exi_response: str = Field(alias="exiResponse", max_length=17000)
    remaining_contracts: int | None = Field(default=None, alias="remainingContracts", ge=0)
    reason: str | None = Field(default=None, exclude=True)


def failed(reason: str) -> ContractResponse:
    """``Failed`` with the empty ``exiResponse`` the schema still requires."""
    return ContractResponse(status="Failed", exi_response="", reason=reason)


class ContractProvider(Protocol):
    async def get_certificate(self, request: ContractRequest) -> ContractResponse:
        """The EXI answer for the EV; ``failed(...)`` when there is none."""
        ...


class NoContractProvider:
    """No PKI configured: every request fails, and the station is told so at once."""

    async def get_certificate(self, request: ContractRequest) -> ContractResponse:
        return failed("no contract certificate provider is configured")


class HttpContractProvider:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        token: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = client or httpx.AsyncClient(timeout=timeout_s, headers=headers)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_certificate(self, request: ContractRequest) -> ContractResponse:
        body = request.model_dump(by_alias=True, exclude_none=True)
        try:
            response = await self._client.post(self._url, json=body)
        except httpx.HTTPError as exc:
            logger.warning("contract certificate provider unreachable: %r", exc)
            return failed(f"provider unreachable: {exc!r}")
        if response.status_code != 200:
            return failed(f"provider answered HTTP {response.status_code}")
        try:
            return ContractResponse.model_validate_json(response.content)
        except ValidationError as exc:
            return failed(f"provider answer invalid: {exc.error_count()} errors")

"""The Plug & Charge calls this service answers (2.0.1 M01/M02/M06, 2.1 M07)."""

import logging
from typing import TypedDict, cast

from csms_core.calls import has
from csms_ocpp.messages import (
    AUTHORIZE,
    GET_15118_EV_CERTIFICATE,
    GET_CERTIFICATE_CHAIN_STATUS,
    GET_CERTIFICATE_STATUS,
    AuthorizeRequest,
    Get15118EVCertificateRequest,
    Get15118EVCertificateResponse,
    GetCertificateChainStatusRequest,
    GetCertificateChainStatusResponse,
    GetCertificateStatusRequest,
    GetCertificateStatusResponse,
)
from csms_security.context import CallContext, calls
from csms_security.pnc.contracts import ContractRequest, failed
from csms_security.pnc.status import authorize_status, certificate_status, chain_status

logger = logging.getLogger(__name__)

MAX_EXI_RESPONSE = {"2.0.1": 7500, "2.1": 17000}  # Get15118EVCertificateResponse.exiResponse


@calls.decides(GET_15118_EV_CERTIFICATE)
async def on_get_15118_ev_certificate(
    ctx: CallContext, payload: Get15118EVCertificateRequest
) -> Get15118EVCertificateResponse:
    """The EV's certificate installation/update request, to the contract-certificate provider."""
    request = ContractRequest(
        station_id=ctx.station_id,
        iso15118_schema_version=payload["iso15118SchemaVersion"],
        action=payload["action"],
        exi_request=payload["exiRequest"],
        maximum_contract_certificate_chains=payload.get("maximumContractCertificateChains"),
        prioritized_emaids=payload.get("prioritizedEMAIDs"),
    )
    answer = await ctx.pki.contracts.get_certificate(request)
    if answer.reason:
        logger.warning("no contract certificate for %s: %s", ctx.station_id, answer.reason)
    if len(answer.exi_response) > MAX_EXI_RESPONSE[ctx.version.number]:
        logger.warning("contract answer for %s too long for OCPP", ctx.station_id)
        answer = failed("the provider's EXI answer is longer than OCPP allows")
    # The provider's answer model has the response's fields (by alias): status, exiResponse...
    wire = cast(Get15118EVCertificateResponse, answer.model_dump(by_alias=True, exclude_none=True))
    if ctx.version.number != "2.1":
        wire.pop("remainingContracts", None)  # 2.1 only
    return wire


@calls.decides(GET_CERTIFICATE_STATUS)
async def on_get_certificate_status(
    ctx: CallContext, request: GetCertificateStatusRequest
) -> GetCertificateStatusResponse:
    return await certificate_status(ctx.pki.revocation, request, ctx.version.number)


@calls.decides(GET_CERTIFICATE_CHAIN_STATUS)
async def on_get_certificate_chain_status(
    ctx: CallContext, request: GetCertificateChainStatusRequest
) -> GetCertificateChainStatusResponse:
    return await chain_status(ctx.pki.revocation, request)


class CertificateStatusPart(TypedDict, total=False):
    """Security's part of an AuthorizeResponse (sessions decides ``idTokenInfo``)."""

    certificateStatus: str


# 2.0.1 C07 (TC_C_50-52): an Authorize with ISO 15118 contract data gets its certificate's
# status; hash data is checked by OCSP, a whole chain against the trust store first.
@calls.contributes(AUTHORIZE, when=has("iso15118CertificateHashData", "certificate"))
async def on_authorize(ctx: CallContext, request: AuthorizeRequest) -> CertificateStatusPart:
    status = await authorize_status(ctx.pki.revocation, ctx.pki.trust, request)
    return {} if status is None else {"certificateStatus": status.value}

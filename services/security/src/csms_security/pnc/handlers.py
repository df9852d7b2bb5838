"""The Plug & Charge calls this service answers (2.0.1 M01/M02/M06, 2.1 M07)."""

import logging

from csms_security.context import CallContext, handles
from csms_security.pnc.contracts import ContractRequest, failed
from csms_security.pnc.status import certificate_status, chain_status

logger = logging.getLogger(__name__)

MAX_EXI_RESPONSE = {"2.0.1": 7500, "2.1": 17000}  # Get15118EVCertificateResponse.exiResponse


@handles("Get15118EVCertificate")
async def on_get_15118_ev_certificate(ctx: CallContext) -> dict[str, object]:
    """The EV's certificate installation/update request, to the contract-certificate provider."""
    payload = ctx.payload
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
    wire = answer.model_dump(by_alias=True, exclude_none=True)
    if ctx.version.number != "2.1":
        wire.pop("remainingContracts", None)  # 2.1 only
    return wire


@handles("GetCertificateStatus")
async def on_get_certificate_status(ctx: CallContext) -> dict[str, object]:
    return await certificate_status(ctx.pki.revocation, ctx.payload, ctx.version.number)


@handles("GetCertificateChainStatus")
async def on_get_certificate_chain_status(ctx: CallContext) -> dict[str, object]:
    return await chain_status(ctx.pki.revocation, ctx.payload)

"""The version-neutral CustomerInformation request (OCPP 2.0.1 N09/N10; not in 1.6)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

HashAlgorithm = Literal["SHA256", "SHA384", "SHA512"]


class CustomerIdToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_token: str = Field(min_length=1, max_length=36, examples=["04A2B3C4D5E6F7"])
    type: str = Field(
        min_length=1, max_length=20, examples=["ISO14443"], description="2.x IdTokenType.type"
    )


class CustomerCertificate(BaseModel):
    """The customer's contract certificate by its hashes (CertificateHashDataType)."""

    model_config = ConfigDict(extra="forbid")

    hash_algorithm: HashAlgorithm
    issuer_name_hash: str = Field(min_length=1, max_length=128)
    issuer_key_hash: str = Field(min_length=1, max_length=128)
    serial_number: str = Field(min_length=1, max_length=40)


class CustomerInformationCommand(BaseModel):
    """Report and/or clear what the station keeps about one customer, named exactly one way."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"report": True, "id_token": {"id_token": "04A2B3C4D5E6F7", "type": "ISO14443"}},
                {"report": True, "clear": True, "customer_identifier": "customer-42"},
            ]
        },
    )

    report: bool = Field(default=False, strict=True, description="the station sends what it keeps")
    clear: bool = Field(default=False, strict=True, description="the station deletes what it keeps")
    id_token: CustomerIdToken | None = None
    customer_identifier: str | None = Field(default=None, min_length=1, max_length=64)
    customer_certificate: CustomerCertificate | None = None

    @model_validator(mode="after")
    def _one_customer_something_to_do(self) -> "CustomerInformationCommand":
        named = [self.id_token, self.customer_identifier, self.customer_certificate]
        if sum(value is not None for value in named) != 1:
            raise ValueError(
                "name the customer exactly one way: id_token, customer_identifier or "
                "customer_certificate"
            )
        if not (self.report or self.clear):
            raise ValueError("ask to report, to clear, or both")
        return self


def customer_information(command: CustomerInformationCommand) -> dict[str, Any]:
    """OCPP 2.0.1 N09/N10 CustomerInformation, without its requestId (allocated when sent)."""
    request: dict[str, Any] = {"report": command.report, "clear": command.clear}
    if command.id_token is not None:
        request["idToken"] = {"idToken": command.id_token.id_token, "type": command.id_token.type}
    if command.customer_identifier is not None:
        request["customerIdentifier"] = command.customer_identifier
    if (certificate := command.customer_certificate) is not None:
        request["customerCertificate"] = {
            "hashAlgorithm": certificate.hash_algorithm,
            "issuerNameHash": certificate.issuer_name_hash,
            "issuerKeyHash": certificate.issuer_key_hash,
            "serialNumber": certificate.serial_number,
        }
    return request

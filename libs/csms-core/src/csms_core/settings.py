"""Settings shared by every component (env prefix ``CSMS_``).

Nothing here connects anywhere: settings are read, checked and handed to the
lifespan of a component, which opens its clients.
"""

import ssl
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that are never a real secret: the examples of our own files and the usual defaults.
_PLACEHOLDERS = frozenset(
    {"", "csms", "password", "secret", "postgres", "redis", "kafka", "admin", "test", "demo"}
)
# A station with no identity record (never registered over REST): ``reject`` refuses it at
# the WebSocket upgrade (HTTP 404) and its boot; ``pending`` and ``accept`` let it connect,
# and its BootNotification is answered so (the gateway and sessions read the same setting).
UnknownStationPolicy = Literal["accept", "pending", "reject"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
KafkaClient = Literal["librdkafka", "aiokafka"]
# Measured side by side in the gateway benchmark (bench/RESULTS.md): librdkafka's producer
# costs the gateway about as much CPU per CALL, does part of it beside the event loop's
# thread, and fails a record it cannot store in time where aiokafka holds it in an outage.
DEFAULT_KAFKA_CLIENT: KafkaClient = "librdkafka"
# How long a produced record waits for others to join its batch while no request is in
# flight (``CSMS_KAFKA_LINGER_MS``; the measurements are in bench/RESULTS.md).
DEFAULT_KAFKA_LINGER_MS = 0


def is_placeholder_secret(value: str) -> bool:
    """A secret nobody chose: empty, a default such as ``csms``, or a CHANGE-ME marker."""
    folded = value.strip().lower()
    squeezed = folded.replace("-", "").replace("_", "")
    return (
        folded in _PLACEHOLDERS
        or "changeme" in squeezed
        or "placeholder" in folded
        or folded.startswith(("example", "xxx"))
    )


def url_password(url: str) -> str | None:
    """The password in a database or Redis URL, None if it has none."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password is not None else None


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class CommonSettings(BaseSettings):
    """What every component reads. Missing Kafka/Redis means the embedded bus and router."""

    model_config = SettingsConfigDict(env_prefix="CSMS_", extra="ignore")

    environment: Environment = Environment.PRODUCTION
    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    kafka_partitions: int = 12
    kafka_replication_factor: int = 1
    # Prepended to every topic name (a namespace on a shared cluster); empty by default.
    kafka_topic_prefix: str = ""
    # What a consumer's fetch asks the broker for (aiokafka's fetch_min_bytes,
    # fetch_max_wait_ms and max_partition_fetch_bytes; docs/operators.md).
    kafka_fetch_min_bytes: int = Field(default=1, ge=1)
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=0)
    kafka_max_partition_fetch_bytes: int = Field(default=1024 * 1024, ge=1024)
    # How long a produced record may wait for others to join its batch while no request
    # is in flight (librdkafka's and aiokafka's linger; docs/operators.md).
    kafka_linger_ms: int = Field(default=DEFAULT_KAFKA_LINGER_MS, ge=0, le=1000)
    database_url: str = "sqlite+aiosqlite:///./csms.db"
    log_level: str = "INFO"
    # JSON lines (true) or readable lines (false); unset: JSON unless stderr is a terminal.
    log_json: bool | None = None
    # The share of the traces this process starts that are recorded (spans exported): a
    # station message at the gateway, a REST request that carries no traceparent, a record
    # published outside any trace (a station's connection events). The others still have a
    # trace id and an unsampled traceparent. 1.0 records every one.
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    # OCPP-J calls a service sends wait this long for the station's answer.
    command_timeout_s: float = 30.0
    # Stations whose events a consumer handles at once (one station's always in order);
    # SQLite takes one writer at a time, so there it is always 1 (``consumer_lanes``).
    consumer_concurrency: int = Field(default=16, ge=1, le=256)
    # The batched consumer (csms_core.bus.batching): records per poll, per transaction,
    # partitions applied side by side (1 on SQLite), and how long after a record whose
    # answer a station waits for its transaction may go on before it commits: at least
    # the budget, as long as a transaction's measured overhead, at most the max.
    consumer_batch_records: int = Field(default=1000, ge=1, le=10_000)
    consumer_batch_transaction: int = Field(default=500, ge=1, le=5_000)
    consumer_batch_lanes: int = Field(default=2, ge=1, le=64)
    # A poll of fewer records than this goes in one transaction, not one per lane (0: never).
    consumer_batch_lanes_from: int = Field(default=0, ge=0, le=10_000)
    consumer_answer_budget_ms: float = Field(default=5.0, ge=0)
    consumer_answer_budget_max_ms: float = Field(default=100.0, ge=0)
    consumer_poll_ahead: bool = False

    # The Kafka client the producer of every component is built on (consumers are aiokafka's).
    kafka_client: KafkaClient = DEFAULT_KAFKA_CLIENT

    # Kafka's security (docs/operators.md "Kafka and Redis security"): TLS and/or SASL.
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # PEM files: the CAs the brokers' certificates chain to (the system's when unset), and
    # a client certificate and key for brokers that require one (mutual TLS).
    kafka_tls_ca_file: Path | None = None
    kafka_tls_cert_file: Path | None = None
    kafka_tls_key_file: Path | None = None
    # Redis: a password (or an ACL user and its password) kept out of CSMS_REDIS_URL, and
    # for rediss:// URLs the CAs of its certificate and a client certificate if required.
    redis_username: str | None = None
    redis_password: SecretStr | None = None
    redis_tls_ca_file: Path | None = None
    redis_tls_cert_file: Path | None = None
    redis_tls_key_file: Path | None = None

    @property
    def embedded(self) -> bool:
        return self.kafka_bootstrap is None and self.redis_url is None

    @property
    def production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    def kafka_options(self) -> dict[str, Any]:
        """What every Kafka client of this component is given (aiokafka's arguments)."""
        protocol = self.kafka_security_protocol
        options: dict[str, Any] = {"security_protocol": protocol}
        if protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = _tls_context(
                self.kafka_tls_ca_file, self.kafka_tls_cert_file, self.kafka_tls_key_file
            )
        if protocol.startswith("SASL"):
            password = self.kafka_sasl_password
            options |= {
                "sasl_mechanism": self.kafka_sasl_mechanism,
                "sasl_plain_username": self.kafka_sasl_username,
                "sasl_plain_password": password.get_secret_value() if password else None,
            }
        return options

    def librdkafka_options(self) -> dict[str, str]:
        """The same security for a librdkafka client (its configuration properties): the
        broker's certificate checked against the CAs and its host name."""
        protocol = self.kafka_security_protocol
        options: dict[str, str] = {"security.protocol": protocol}
        if protocol in ("SSL", "SASL_SSL"):
            ca_file = self.kafka_tls_ca_file
            options["ssl.ca.location"] = str(ca_file) if ca_file else "probe"  # the system's
            options["ssl.endpoint.identification.algorithm"] = "https"
            if self.kafka_tls_cert_file is not None and self.kafka_tls_key_file is not None:
                options["ssl.certificate.location"] = str(self.kafka_tls_cert_file)
                options["ssl.key.location"] = str(self.kafka_tls_key_file)
        if protocol.startswith("SASL"):
            password = self.kafka_sasl_password
            options |= {
                "sasl.mechanism": self.kafka_sasl_mechanism,
                "sasl.username": self.kafka_sasl_username or "",
                "sasl.password": password.get_secret_value() if password else "",
            }
        return options

    def redis_options(self) -> dict[str, Any]:
        """What the Redis client is given besides the URL (redis-py's arguments)."""
        options: dict[str, Any] = {}
        if self.redis_username is not None:
            options["username"] = self.redis_username
        if self.redis_password is not None:
            options["password"] = self.redis_password.get_secret_value()
        if self.redis_tls_ca_file is not None:
            options["ssl_ca_certs"] = str(self.redis_tls_ca_file)
        if self.redis_tls_cert_file is not None:
            options["ssl_certfile"] = str(self.redis_tls_cert_file)
        if self.redis_tls_key_file is not None:
            options["ssl_keyfile"] = str(self.redis_tls_key_file)
        return options

    @model_validator(mode="after")
    def _distributed_needs_both(self) -> Self:
        if (self.kafka_bootstrap is None) != (self.redis_url is None):
            raise ValueError(
                "set both CSMS_KAFKA_BOOTSTRAP and CSMS_REDIS_URL (distributed mode) or neither "
                "(embedded mode)"
            )
        if self.kafka_security_protocol.startswith("SASL") and (
            self.kafka_sasl_username is None or self.kafka_sasl_password is None
        ):
            raise ValueError(
                f"CSMS_KAFKA_SECURITY_PROTOCOL {self.kafka_security_protocol} needs "
                "CSMS_KAFKA_SASL_USERNAME and CSMS_KAFKA_SASL_PASSWORD"
            )
        if (self.kafka_tls_cert_file is None) != (self.kafka_tls_key_file is None):
            raise ValueError(
                "set both CSMS_KAFKA_TLS_CERT_FILE and CSMS_KAFKA_TLS_KEY_FILE or neither"
            )
        if (self.redis_tls_cert_file is None) != (self.redis_tls_key_file is None):
            raise ValueError(
                "set both CSMS_REDIS_TLS_CERT_FILE and CSMS_REDIS_TLS_KEY_FILE or neither"
            )
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Self:
        """Production refuses a secret nobody chose (``CSMS_ENVIRONMENT=development`` allows
        them, e.g. docker compose's demo passwords)."""
        if not self.production:
            return self
        secrets = {
            "CSMS_DATABASE_URL's password": url_password(self.database_url),
            "CSMS_REDIS_URL's password": url_password(self.redis_url or ""),
            "CSMS_REDIS_PASSWORD": _revealed(self.redis_password),
            "CSMS_KAFKA_SASL_PASSWORD": _revealed(self.kafka_sasl_password),
        }
        placeholders = [
            name
            for name, value in secrets.items()
            if value is not None and is_placeholder_secret(value)
        ]
        if placeholders:
            raise ValueError(
                f"{', '.join(placeholders)}: a placeholder, not a secret; set a real one "
                "(or CSMS_ENVIRONMENT=development on a machine of your own)"
            )
        return self


def _revealed(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _tls_context(
    ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> ssl.SSLContext:
    """A client TLS context: the broker's certificate checked (host name included)."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context

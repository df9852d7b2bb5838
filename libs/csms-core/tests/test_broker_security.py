"""Kafka and Redis security settings: a Redis of this test's own on loopback with TLS and an
ACL user (the default user off), reached only with the right credentials over TLS; the
Kafka client options for SASL and TLS; production refusing placeholder secrets."""

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from confluent_kafka import Producer
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from csms_core.router import Route
from csms_core.router.redis import RedisRouter
from csms_core.settings import CommonSettings, Environment, is_placeholder_secret

# redis-py leaves the transport of a connection it failed to set up (TLS, credentials) to
# the garbage collector, whose ResourceWarning is no failure of these tests.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

USER, PASSWORD = "csms", "tls-and-acl-secret-7f3a"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """redis-server with TLS only and one ACL user; yields what a client needs."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (scripts/infra.sh installs it)")
    directory = tmp_path_factory.mktemp("redis-tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    server.private_key_pem.write_to_path(str(directory / "server-key.pem"))
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    port = _free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(directory),
         "--tls-cert-file", str(directory / "server.pem"),
         "--tls-key-file", str(directory / "server-key.pem"),
         "--tls-ca-cert-file", str(directory / "ca.pem"), "--tls-auth-clients", "no",
         "--user", USER, "on", f">{PASSWORD}", "~*", "&*", "+@all",
         "--user", "default", "off"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_listening(port)
        yield {"port": port, "ca_file": directory / "ca.pem"}
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise TimeoutError(f"redis-server not listening on {port}")


def _settings(**values: Any) -> CommonSettings:
    return CommonSettings(
        environment=Environment.DEVELOPMENT, kafka_bootstrap="127.0.0.1:1", **values
    )


async def _ping(settings: CommonSettings) -> None:
    """PING with the settings' options, once (the router would retry a refusal)."""
    assert settings.redis_url is not None
    client = Redis.from_url(settings.redis_url, socket_timeout=5, **settings.redis_options())
    try:
        await client.ping()
    finally:
        await client.aclose()


ROUTE = Route(station_id="CP-1", gateway_id="gw-1", connection_id="c1", ocpp_version="2.0.1")


async def test_redis_with_tls_and_an_acl_user_is_reached_with_the_settings(
    tls_redis: dict[str, Any],
) -> None:
    settings = _settings(
        redis_url=f"rediss://127.0.0.1:{tls_redis['port']}/0",
        redis_username=USER,
        redis_password=PASSWORD,
        redis_tls_ca_file=tls_redis["ca_file"],
    )
    assert settings.redis_url is not None
    async with RedisRouter(settings.redis_url, **settings.redis_options()) as router:
        await router.register(ROUTE, ttl_s=10)
        assert await router.lookup("CP-1") == ROUTE


@pytest.mark.parametrize(
    "credentials",
    [{}, {"redis_username": USER, "redis_password": "wrong-password-1234"}],
    ids=["none", "wrong password"],
)
async def test_redis_refuses_missing_or_wrong_credentials(
    tls_redis: dict[str, Any], credentials: dict[str, str]
) -> None:
    settings = _settings(
        redis_url=f"rediss://127.0.0.1:{tls_redis['port']}/0",
        redis_tls_ca_file=tls_redis["ca_file"],
        **credentials,
    )
    with pytest.raises(AuthenticationError):
        await _ping(settings)


async def test_redis_refuses_a_client_without_tls(tls_redis: dict[str, Any]) -> None:
    settings = _settings(
        redis_url=f"redis://127.0.0.1:{tls_redis['port']}/0",
        redis_username=USER,
        redis_password=PASSWORD,
    )
    with pytest.raises(RedisConnectionError):
        await _ping(settings)


# -- Kafka's client options ----------------------------------------------------------------


def test_kafka_sasl_over_tls_options(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    settings = _settings(
        redis_url="redis://127.0.0.1:1/0",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="csms",
        kafka_sasl_password="kafka-secret-9c1d",
        kafka_tls_ca_file=tmp_path / "ca.pem",
    )
    options = settings.kafka_options()
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "csms",
        "sasl_plain_password": "kafka-secret-9c1d",
    }
    assert "kafka-secret-9c1d" not in repr(settings)  # a secret, never printed


def test_plaintext_kafka_has_no_tls_or_sasl_options() -> None:
    settings = _settings(redis_url="redis://127.0.0.1:1/0")
    assert settings.kafka_options() == {"security_protocol": "PLAINTEXT"}
    assert settings.librdkafka_options() == {"security.protocol": "PLAINTEXT"}


def test_librdkafka_gets_the_same_sasl_and_mutual_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    client = ca.issue_cert("csms-gateway")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    settings = _settings(
        redis_url="redis://127.0.0.1:1/0",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="csms",
        kafka_sasl_password="kafka-secret-9c1d",
        kafka_tls_ca_file=tmp_path / "ca.pem",
        kafka_tls_cert_file=tmp_path / "client.pem",
        kafka_tls_key_file=tmp_path / "client.key",
    )
    options = settings.librdkafka_options()
    assert options == {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(tmp_path / "ca.pem"),
        "ssl.endpoint.identification.algorithm": "https",  # the host name is checked
        "ssl.certificate.location": str(tmp_path / "client.pem"),
        "ssl.key.location": str(tmp_path / "client.key"),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "csms",
        "sasl.password": "kafka-secret-9c1d",
    }
    # librdkafka accepts every one of them (it refuses an unknown property or value)
    Producer({"bootstrap.servers": "127.0.0.1:1", **options})


def test_librdkafka_tls_without_a_ca_file_uses_the_systems() -> None:
    settings = _settings(redis_url="redis://127.0.0.1:1/0", kafka_security_protocol="SSL")
    options = settings.librdkafka_options()
    assert options == {
        "security.protocol": "SSL",
        "ssl.ca.location": "probe",
        "ssl.endpoint.identification.algorithm": "https",
    }
    Producer({"bootstrap.servers": "127.0.0.1:1", **options})


def test_sasl_without_credentials_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs CSMS_KAFKA_SASL_USERNAME"):
        _settings(redis_url="redis://127.0.0.1:1/0", kafka_security_protocol="SASL_PLAINTEXT")


# -- placeholder secrets -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("database_url", "postgresql+asyncpg://csms:CHANGE-ME@db:5432/csms"),
        ("database_url", "postgresql+asyncpg://csms:csms@db:5432/csms"),
        ("redis_url", "redis://:changeme@redis:6379/0"),
        ("redis_password", "password"),
        ("kafka_sasl_password", "change_me"),
    ],
)
def test_production_refuses_a_placeholder_secret(variable: str, value: str) -> None:
    values: dict[str, Any] = {"kafka_bootstrap": "kafka:9092", "redis_url": "redis://redis/0"}
    if variable == "kafka_sasl_password":
        values |= {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "csms"}
    with pytest.raises(ValidationError, match="a placeholder, not a secret"):
        CommonSettings(environment=Environment.PRODUCTION, **{**values, variable: value})


def test_production_takes_real_secrets_and_development_takes_placeholders() -> None:
    CommonSettings(
        environment=Environment.PRODUCTION,
        database_url="postgresql+asyncpg://csms:9Qe2-real-Secret@db:5432/csms",
        kafka_bootstrap="kafka:9092",
        redis_url="redis://:another-Real-secret@redis:6379/0",
    )
    CommonSettings(
        environment=Environment.DEVELOPMENT,
        database_url="postgresql+asyncpg://csms:csms@db:5432/csms",
    )
    assert not is_placeholder_secret("9Qe2-real-Secret")
    assert is_placeholder_secret("  CHANGE-ME  ") and is_placeholder_secret("")

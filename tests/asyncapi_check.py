"""Records checked against ``docs/asyncapi.yaml``: what the document promises, on the wire.

``RecordChecker`` takes one Kafka record (topic, key, headers, value) and returns
what is wrong with it: a value that is not its channel's message payload (picked
by the envelope's ``type``), a missing or malformed ``traceparent`` header, a key
that is not the station id (and a record the code's own model of its topic would
not read). ``check_topics`` reads every topic of a test cluster's
prefix from the beginning with a plain consumer (no group) and checks each record;
``tests.cluster.retire_topics`` runs it at the end of every e2e cluster's life.

A test that writes a wrong record on purpose (to see it dead-lettered, say) names
its envelope id with ``expect_invalid``: that record is then not a finding.
"""

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from csms_core import topics
from csms_core.events.topic import InvalidEvent, UnknownEventType

logger = logging.getLogger(__name__)

ASYNCAPI = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.yaml"
DOCUMENT_URI = "urn:csms:asyncapi"

# Envelope ids of records tests wrote wrong on purpose (this pytest process).
_EXPECTED_INVALID: set[str] = set()


def expect_invalid(envelope_id: str) -> None:
    """The record with this envelope id is wrong on purpose: the check passes over it."""
    _EXPECTED_INVALID.add(envelope_id)


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    return loaded


@cache
def validator(pointer: str) -> Draft7Validator:
    """A validator for the schema at ``pointer`` inside the document, resolving its $refs."""
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document(), default_specification=DRAFT7)
    )
    return Draft7Validator(
        {"$ref": f"{DOCUMENT_URI}#{pointer}"},
        registry=registry,
        format_checker=Draft7Validator.FORMAT_CHECKER,
    )


def _errors(pointer: str, instance: object) -> list[str]:
    found = sorted(validator(pointer).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [
        f"{pointer} at /{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in found
    ]


@cache
def _messages_by_address() -> dict[str, dict[str, str]]:
    """Each channel's address -> {event type: its message component's name}."""
    messages = document()["components"]["messages"]
    channels: dict[str, dict[str, str]] = {}
    for channel in document()["channels"].values():
        names = [ref["$ref"].rsplit("/", 1)[-1] for ref in channel["messages"].values()]
        channels[channel["address"]] = {messages[name]["name"]: name for name in names}
    return channels


def key_pointer(message: str) -> str:
    """Where the schema of a message's Kafka key is: its trait's ``bindings.kafka.key``."""
    traits = document()["components"]["messages"][message]["traits"]
    (name,) = [ref["$ref"].rsplit("/", 1)[-1] for ref in traits if "/messageTraits/" in ref["$ref"]]
    return f"/components/messageTraits/{name}/bindings/kafka/key"


@dataclass(frozen=True)
class Finding:
    """One record and what is wrong with it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    value: bytes
    errors: tuple[str, ...]

    def __str__(self) -> str:
        value = self.value.decode(errors="replace")
        return (
            f"{self.topic}[{self.partition}]@{self.offset} key={self.key!r} "
            f"headers={dict(self.headers)!r}\n  value: {value[:2000]}\n  "
            + "\n  ".join(self.errors)
        )


class RecordChecker:
    """Checks records of topics named ``prefix`` + a documented channel address."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def errors(
        self, topic: str, key: bytes | None, headers: Sequence[tuple[str, bytes]], value: bytes
    ) -> list[str]:
        """What is wrong with one record (empty: it is as the document says)."""
        address = topic.removeprefix(self.prefix)
        channel = _messages_by_address().get(address)
        if channel is None:
            return [f"topic {address!r} has no channel in {ASYNCAPI.name}"]
        problems = self._header_errors(headers)
        try:
            payload: object = json.loads(value)
        except ValueError as exc:
            return [*problems, f"the value is not JSON: {exc}"]
        kind = payload.get("type") if isinstance(payload, dict) else None
        message = channel.get(kind) if isinstance(kind, str) else None
        if message is None:
            documented = ", ".join(sorted(channel))
            problems.append(f"type {kind!r} is not a message of {address} ({documented})")
            return problems
        problems += _errors(f"/components/messages/{message}/payload", payload)
        problems += self._model_errors(address, value)
        station = payload.get("station_id") if isinstance(payload, dict) else None
        return problems + self._key_errors(key, station, key_pointer(message))

    @staticmethod
    def _model_errors(address: str, value: bytes) -> list[str]:
        """The code's own model of the topic reads what the document accepts."""
        topic = topics.BY_NAME.get(address)
        if topic is None:
            return [f"the document's channel {address!r} is no topic of csms_core.topics"]
        try:
            topic.parse(value)
        except (InvalidEvent, UnknownEventType) as exc:
            return [f"the code's model of {address} refuses it: {exc}"]
        return []

    @staticmethod
    def _header_errors(headers: Sequence[tuple[str, bytes]]) -> list[str]:
        try:
            named = {name: raw.decode() for name, raw in headers}
        except UnicodeDecodeError as exc:
            return [f"a header is not UTF-8: {exc}"]
        return _errors("/components/schemas/Headers", named)

    @staticmethod
    def _key_errors(key: bytes | None, station_id: object, pointer: str) -> list[str]:
        if key is None:
            return ["the record has no key (the document: the station id)"]
        try:
            text = key.decode()
        except UnicodeDecodeError:
            return [f"the key {key!r} is not UTF-8"]
        problems = _errors(pointer, text)
        if text != station_id:
            problems.append(f"the key {text!r} is not the envelope's station_id {station_id!r}")
        return problems


@dataclass
class Report:
    """What one cluster's topics held: records per event type, and the findings."""

    prefix: str
    types: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(self.types.values())

    def summary(self) -> str:
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(self.types.items()))
        return f"{self.prefix}*: {self.records} records checked ({counts})"

    def raise_findings(self) -> None:
        if self.findings:
            shown = "\n".join(str(finding) for finding in self.findings[:20])
            more = len(self.findings) - 20
            raise AssertionError(
                f"{len(self.findings)} of {self.records} records on {self.prefix}* disagree "
                f"with {ASYNCAPI.name}"
                + (f" (the first 20 shown, {more} more)" if more > 0 else "")
                + f":\n{shown}"
            )


def _type_of(value: bytes) -> tuple[str, str | None]:
    try:
        payload = json.loads(value)
    except ValueError:
        return "(not JSON)", None
    if not isinstance(payload, dict):
        return "(not an object)", None
    envelope_id = payload.get("id")
    return str(payload.get("type")), envelope_id if isinstance(envelope_id, str) else None


def check_records(
    prefix: str,
    records: Iterable[tuple[str, int, int, bytes | None, Sequence[tuple[str, bytes]], bytes]],
) -> Report:
    """Check (topic, partition, offset, key, headers, value) records of one prefix."""
    checker, report = RecordChecker(prefix), Report(prefix)
    for topic, partition, offset, key, headers, value in records:
        kind, envelope_id = _type_of(value)
        report.types[kind] += 1
        errors = checker.errors(topic, key, headers, value)
        if errors and envelope_id not in _EXPECTED_INVALID:
            report.findings.append(
                Finding(topic, partition, offset, key, tuple(headers), value, tuple(errors))
            )
    return report


async def check_topics(bootstrap: str, prefix: str) -> Report:
    """Read every topic named ``prefix``... from the beginning and check each record."""
    started = time.monotonic()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = sorted(name for name in await admin.list_topics() if name.startswith(prefix))
        descriptions = await admin.describe_topics(names) if names else []
    finally:
        await admin.close()
    partitions = [
        TopicPartition(description["topic"], p["partition"])
        for description in descriptions
        for p in description["partitions"]
    ]
    if not partitions:
        return Report(prefix)
    # read_committed: what the services' own consumers see (aborted writes are not records).
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if end[tp] > 0}
        read: list[tuple[str, int, int, bytes | None, Sequence[tuple[str, bytes]], bytes]] = []
        deadline = time.monotonic() + 120
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"{sorted(pending)} not read to their end in 120 s")
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                read += [
                    (r.topic, r.partition, r.offset, r.key, tuple(r.headers), r.value or b"")
                    for r in records
                ]
            pending = {tp for tp in pending if await consumer.position(tp) < end[tp]}
        report = check_records(prefix, read)
    finally:
        await consumer.stop()
    logger.info("%s in %.1f s", report.summary(), time.monotonic() - started)
    return report

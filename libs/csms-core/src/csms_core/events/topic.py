"""A topic bound once to the event models its records are (faust's ``app.topic(value_type=)``).

``Topic`` is the topic's name (a ``str``: it is used wherever a name is), plus the
models of the event ``type``s it carries. Producers publish those models
(``Bus.publish(topic, event)`` is typed by it); consumers ``decode`` a record into
one of them, or get ``InvalidEvent`` (the runner dead-letters it with the reason)
or ``UnknownEventType`` (a type newer than this code: skipped, as the versioning
policy of docs/integrators.md asks).
"""

from collections.abc import Mapping
from typing import Annotated, Any, Generic, Protocol, TypeVar, Union, cast, get_args

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from csms_core.envelope import Envelope, Event
from csms_core.errors import Ignored, Unprocessable

E = TypeVar("E", bound=Event[Any])
_MAX_PROBLEMS = 5


class InvalidEvent(Unprocessable):
    """The record is not an event of its topic: not JSON, no envelope, or a bad ``data``."""


class UnknownEventType(Ignored):
    """An event ``type`` its topic does not know (yet)."""


class Record(Protocol):
    """What decoding needs of a consumed record."""

    @property
    def value(self) -> bytes: ...


def type_name(model: type[Event[Any]]) -> str | None:
    """The ``type`` a model is fixed to (its ``Literal``), None for ``Envelope``."""
    field = model.model_fields["type"]
    args = get_args(field.annotation)
    return str(args[0]) if len(args) == 1 else None


class Topic(str, Generic[E]):
    """A topic name bound to the models of its records."""

    models: Mapping[str, type[E]]
    _adapter: TypeAdapter[Any]

    def __new__(cls, name: str, *models: type[E]) -> "Topic[E]":
        topic = super().__new__(cls, name)
        names = {type_name(model): model for model in models}
        if None in names:  # an untyped topic (tests, tools): any type, data unread
            topic.models, topic._adapter = {}, TypeAdapter(Envelope)
            return topic
        topic.models = cast(Mapping[str, type[E]], names)
        if len(models) == 1:
            topic._adapter = TypeAdapter(models[0])
        else:
            union: Any = Union[tuple(models)]  # noqa: UP007 - built at runtime
            topic._adapter = TypeAdapter(Annotated[union, Field(discriminator="type")])
        _TOPIC_OF.update(dict.fromkeys(models, topic))
        return topic

    @property
    def name(self) -> str:
        return str(self)

    def decode(self, record: Record) -> E:
        """The record's event; ``InvalidEvent`` or ``UnknownEventType`` if it is none of ours."""
        return self.parse(record.value)

    def parse(self, raw: bytes) -> E:
        try:
            return cast(E, self._adapter.validate_json(raw))
        except ValidationError as exc:
            raise self._refusal(raw, exc) from None

    def parse_object(self, value: Mapping[str, Any]) -> E:
        """The event from its JSON object (e.g. one kept in an outbox)."""
        try:
            return cast(E, self._adapter.validate_python(value))
        except ValidationError as exc:
            raise self._refusal(orjson.dumps(value), exc) from None

    def _refusal(self, raw: bytes, exc: ValidationError) -> InvalidEvent | UnknownEventType:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return InvalidEvent(f"{self}: the record is not JSON")
        event_type = value.get("type") if isinstance(value, dict) else None
        if isinstance(event_type, str) and self.models and event_type not in self.models:
            return UnknownEventType(f"{self}: no event type {event_type!r} on this topic")
        tag = event_type if isinstance(event_type, str) else None
        return InvalidEvent(f"{self} {tag or 'record'}: {problems(exc, tag)}")


def problems(exc: ValidationError, tag: str | None = None) -> str:
    """A validation error as one short line: ``data.site_id: Field required; ...``."""
    listed = [
        f"{'.'.join(str(part) for part in _path(error['loc'], tag)) or 'value'}: {error['msg']}"
        for error in exc.errors(include_url=False)[:_MAX_PROBLEMS]
    ]
    more = exc.error_count() - len(listed)
    return "; ".join(listed) + (f" (+{more} more)" if more > 0 else "")


def _path(loc: tuple[int | str, ...], tag: str | None) -> tuple[int | str, ...]:
    """The field's path, without the union member pydantic names first."""
    return loc[1:] if loc and loc[0] == tag else loc


_TOPIC_OF: dict[type[Event[Any]], Topic[Any]] = {}


def topic_of(model: type[E]) -> Topic[E]:
    """The one topic events of this model go to."""
    return cast(Topic[E], _TOPIC_OF[model])

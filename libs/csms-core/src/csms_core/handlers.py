"""A service's handlers of consumed events, by event model: the consumer's dispatch table.

Registered where each handler is defined (``@events.on(SessionStarted)``); the topics a
service consumes follow from its registrations (``events.topics``), and the consumer
dispatches a decoded event to the handler of its model. Station CALLs (the events of
``ocpp.inbound``) are dispatched by action instead: ``csms_core.calls``.
"""

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from csms_core.envelope import Event
from csms_core.events.topic import Topic, topic_of

Ctx = TypeVar("Ctx")
E = TypeVar("E", bound=Event[Any])
EventHandler = Callable[[E, Ctx], Awaitable[Any]]


class EventHandlers(Generic[Ctx]):
    """Handlers by event model; each gets the consumer's context (``Ctx``)."""

    def __init__(self) -> None:
        self._handlers: dict[type[Event[Any]], EventHandler[Any, Ctx]] = {}

    def on(self, model: type[E]) -> Callable[[EventHandler[E, Ctx]], EventHandler[E, Ctx]]:
        """Register the decorated ``handler(event, ctx)`` for events of ``model``."""

        def register(handler: EventHandler[E, Ctx]) -> EventHandler[E, Ctx]:
            if model in self._handlers:
                raise ValueError(f"{model.__name__} has a handler already")
            self._handlers[model] = handler
            return handler

        return register

    def handles(self, event: Event[Any]) -> bool:
        return type(event) in self._handlers

    async def dispatch(self, event: Event[Any], ctx: Ctx) -> bool:
        """Run the handler of the event's model; False if there is none."""
        handler = self._handlers.get(type(event))
        if handler is None:
            return False
        await handler(event, ctx)
        return True

    @property
    def topics(self) -> tuple[Topic[Any], ...]:
        """The topics of the registered models, in registration order."""
        return tuple(dict.fromkeys(topic_of(model) for model in self._handlers))

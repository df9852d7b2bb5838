"""The event bus: Kafka in the distributed mode, an in-process log in the embedded one."""

from csms_core.bus.base import Bus, Consumer, Delivery, Outgoing, PublishError
from csms_core.bus.runner import Handler, run_consumer
from csms_core.errors import Ignored, Unprocessable

__all__ = [
    "Bus",
    "Consumer",
    "Delivery",
    "Handler",
    "Ignored",
    "Outgoing",
    "PublishError",
    "Unprocessable",
    "run_consumer",
]

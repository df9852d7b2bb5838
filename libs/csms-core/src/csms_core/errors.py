"""Errors the consumer runner tells apart (see ``csms_core.bus.runner``)."""


class Unprocessable(Exception):
    """The event itself is wrong (a bad field, an unknown site): retrying cannot help.

    The runner sends it to ``csms.dead-letter`` at once, with this error as the reason.
    """


class Ignored(Exception):
    """A record this consumer does not read (e.g. an event ``type`` newer than its code).

    The runner skips it without a retry and without a dead letter.
    """

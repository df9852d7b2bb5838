"""Security events: classification (1.6 and 2.x names), storage, topic and REST."""

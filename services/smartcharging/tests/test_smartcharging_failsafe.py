"""The failsafe cache: fresh for its TTL and while the site's topology is unchanged."""

from csms_smartcharging.charging.failsafe import FailsafeCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failsafe_is_fresh_for_its_ttl() -> None:
    clock = Clock()
    cache = FailsafeCache(ttl_s=2.0, clock=clock)
    assert cache.fresh("depot") is None
    cache.store("depot", 10.0, cache.generation("depot"))
    clock.now += 2.0
    assert cache.fresh("depot") == 10.0
    clock.now += 0.1
    assert cache.fresh("depot") is None
    assert cache.latest("depot") == 10.0  # what a caller falls back to while it plans


def test_a_topology_change_makes_it_stale_even_if_computed_during_the_change() -> None:
    """A plan that started before the change stores a value of the old generation."""
    cache = FailsafeCache(ttl_s=2.0, clock=Clock())
    started_in = cache.generation("depot")
    cache.topology_changed("depot")  # e.g. a station added over REST meanwhile
    cache.store("depot", 16.0, started_in)
    assert cache.fresh("depot") is None
    cache.store("depot", 12.0, cache.generation("depot"))
    assert cache.fresh("depot") == 12.0
    assert cache.fresh("other-site") is None

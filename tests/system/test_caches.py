"""The process's in-memory caches: one registry, one rule (at most ``size`` entries, the least recently used
dropped first), emptied all at once."""

import pytest

from henetlib.system.caches import CACHES, Cache, Registry, clear_caches


def test_least_recently_used_is_evicted_first():
    c = Cache("t", 2)
    made = []

    def make(v):
        return lambda: made.append(v) or v

    assert c.get("a", make(1)) == 1 and c.get("b", make(2)) == 2
    assert c.get("a", make(99)) == 1  # a hit: not made again, and now the most recent
    c.get("c", make(3))  # full: "b", the least recently used, goes
    assert "b" not in c and "a" in c and "c" in c and len(c) == 2
    assert c.get("b", make(4)) == 4 and "a" not in c  # made again; "a" was now the oldest
    assert made == [1, 2, 3, 4]


def test_eviction_happens_before_the_new_entry_is_made():
    """A large split is freed before the next one is decoded: when ``make`` runs, the old entry is gone."""
    c = Cache("t", 1)
    c.get("a", lambda: "A")
    seen = []
    c.get("b", lambda: seen.append(len(c)) or "B")
    assert seen == [0] and list(c._items) == ["b"]


def test_pop_clear_and_a_size_below_one():
    c = Cache("t", 3)
    c.get(1, lambda: 1)
    c.pop(1)
    c.pop("never there")  # no error
    assert len(c) == 0
    c.get(2, lambda: 2)
    c.clear()
    assert 2 not in c
    with pytest.raises(ValueError, match="cache 'x': size must be at least 1, got 0"):
        Cache("x", 0)


def test_registry_names_caches_once_and_clears_them_all():
    r = Registry()
    a, b = r.cache("a", 2), r.cache("b", 1)
    with pytest.raises(ValueError, match="a cache named 'a' exists already"):
        r.cache("a", 5)
    a.get(1, lambda: 1)
    b.get(1, lambda: 1)
    assert r.summary() == {"a": "1 of 2", "b": "1 of 1"} and [c.name for c in r] == ["a", "b"]
    r.clear()
    assert len(a) == len(b) == 0


def test_the_process_registry_holds_the_librarys_caches():
    import henetlib.engine.cache  # noqa: F401 - registers "data sets" and "published indexes"
    import henetlib.engine.evaluator  # noqa: F401 - registers "decoded splits" and "evaluators"

    names = {c.name for c in CACHES}
    assert {"data sets", "published indexes", "decoded splits", "evaluators"} <= names
    c = next(c for c in CACHES if c.name == "data sets")
    c.get("k", lambda: 1)
    clear_caches()
    assert len(c) == 0

"""Stream leases on the in-memory store: exclusivity, balance, takeover, release."""

from __future__ import annotations

from avmon.monitor.leases import Lease, LeaseManager, MemoryLeaseStore

STREAMS = [f"s{i}" for i in range(7)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def managers(store, clock, *owners, lease_s=9.0):
    return [LeaseManager(store, o, STREAMS, lease_s=lease_s, clock=clock) for o in owners]


def test_conditional_writes_let_one_writer_win():
    store = MemoryLeaseStore()
    assert store.write(Lease("s0", "a", 10, 1), None)
    assert not store.write(Lease("s0", "b", 10, 1), None)
    assert not store.write(Lease("s0", "b", 10, 2), 7)
    assert store.write(Lease("s0", "b", 10, 2), 1)
    assert not store.delete("s0", 1) and store.delete("s0", 2)


def test_tasks_share_streams_exclusively_and_in_balance():
    store, clock = MemoryLeaseStore(), Clock()
    a, b = managers(store, clock, "a", "b")
    owned = {}
    for _ in range(4):
        owned = {"a": a.tick(), "b": b.tick()}
        assert not owned["a"] & owned["b"]
        clock.now += a.interval_s
    assert owned["a"] | owned["b"] == set(STREAMS)
    assert sorted(len(v) for v in owned.values()) == [3, 4]


def test_a_dead_task_is_taken_over_within_one_lease_period():
    store, clock = MemoryLeaseStore(), Clock()
    a, b = managers(store, clock, "a", "b")
    for _ in range(3):
        a.tick(), b.tick()
        clock.now += a.interval_s
    lost = set(a.tick())
    assert lost
    died_at = clock.now
    while not lost <= b.tick():  # "a" stops ticking: it died
        assert not lost & b.tick() or clock.now >= died_at + a.lease_s
        clock.now += b.interval_s
    assert clock.now - died_at <= a.lease_s + b.interval_s
    assert b.tick() == set(STREAMS)


def test_a_late_task_loses_what_was_taken_over():
    store, clock = MemoryLeaseStore(), Clock()
    (a,) = managers(store, clock, "a")
    held = a.tick()
    clock.now += a.lease_s + 1  # a stalls past its lease
    (b,) = managers(store, clock, "b")
    assert b.tick() == held
    assert a.tick() == set()  # its renewals fail: it must stop monitoring them


def test_release_all_hands_streams_over_at_once_and_removed_streams_are_released():
    store, clock = MemoryLeaseStore(), Clock()
    a, b = managers(store, clock, "a", "b")
    a.tick(), b.tick()
    a.release_all()
    assert b.tick() == set(STREAMS)
    b.set_streams(STREAMS[:2])
    assert b.tick() == set(STREAMS[:2])
    assert {r.key for r in store.scan()} == {"s0", "s1", "task#b"}

"""Stream leases: N service tasks share M streams, each stream monitored by exactly one task.

A lease is a row per stream (``owner``, ``expires_at``, ``version``) in a store that supports
conditional writes (DynamoDB on AWS: ``avmon/monitor/aws_leases.py``; a fake in memory for
tests). Every write is conditional on the version the writer read, so two tasks racing for a
stream cannot both win; a task that stops renewing (it died, or lost its network) loses its
streams when ``expires_at`` passes, and another task takes them over on its next tick. A task
therefore stops monitoring any stream whose renewal failed, before anyone else may take it.

Balance: each task also renews a heartbeat row (``task#<owner>``); the live tasks share the
streams, each taking at most ``ceil(M / live tasks)`` and releasing any surplus, so a task that
joins gets its share within a tick or two and none is ever taken from a live owner by force.

Clocks: ``expires_at`` is wall-clock seconds (epoch), so tasks' clocks must agree to well under
the lease period (ECS tasks keep NTP time through the Amazon Time Sync Service).
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

TASK_PREFIX = "task#"


@dataclass(frozen=True)
class Lease:
    """One row of the lease table."""

    key: str             # a stream id, or TASK_PREFIX + owner for a task's heartbeat
    owner: str
    expires_at: float    # epoch seconds
    version: int

    def live(self, now: float) -> bool:
        return self.expires_at > now


class LeaseStore(Protocol):
    """The port: a table of leases with conditional writes."""

    def scan(self) -> list[Lease]:
        """Every row, read consistently."""
        ...

    def write(self, lease: Lease, expected_version: int | None) -> bool:
        """Write ``lease`` if the stored row's version is ``expected_version`` (``None``: only
        if there is no row). Returns False if the condition failed."""
        ...

    def delete(self, key: str, expected_version: int) -> bool:
        """Delete the row if its version is ``expected_version``. False if the condition failed."""
        ...


class MemoryLeaseStore:
    """A LeaseStore in memory, with the same conditional semantics (for tests and one task)."""

    def __init__(self) -> None:
        self._rows: dict[str, Lease] = {}
        self._lock = threading.Lock()

    def scan(self) -> list[Lease]:
        with self._lock:
            return list(self._rows.values())

    def write(self, lease: Lease, expected_version: int | None) -> bool:
        with self._lock:
            row = self._rows.get(lease.key)
            if (row.version if row else None) != expected_version:
                return False
            self._rows[lease.key] = lease
            return True

    def delete(self, key: str, expected_version: int) -> bool:
        with self._lock:
            row = self._rows.get(key)
            if row is None or row.version != expected_version:
                return False
            del self._rows[key]
            return True


class LeaseManager:
    """One task's view: which of ``streams`` it owns now. Call ``tick()`` every ``lease_s / 3``.

    ``tick`` renews the task's heartbeat and its leases, releases its surplus above a fair
    share, takes free or expired streams up to that share, and returns the streams it owns.
    A stream whose renewal failed is no longer returned: stop monitoring it at once.
    """

    def __init__(self, store: LeaseStore, owner: str, streams: Iterable[str] = (), *,
                 lease_s: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.store, self.owner, self.lease_s, self.clock = store, owner, lease_s, clock
        self.streams: frozenset[str] = frozenset(streams)
        self._held: dict[str, Lease] = {}
        self._heartbeat: Lease | None = None

    @property
    def interval_s(self) -> float:
        return self.lease_s / 3

    def set_streams(self, streams: Iterable[str]) -> None:
        """The streams to share (after the streams file changed); others are released next tick."""
        self.streams = frozenset(streams)

    def tick(self) -> frozenset[str]:
        now = self.clock()
        rows = {r.key: r for r in self.store.scan()}
        self._beat(rows.get(TASK_PREFIX + self.owner), now)
        tasks = {r.owner for k, r in rows.items() if k.startswith(TASK_PREFIX) and r.live(now)}
        tasks.add(self.owner)
        share = math.ceil(len(self.streams) / len(tasks)) if self.streams else 0

        # renew what this task holds (its read row must still be its own, same version)
        held, self._held = self._held, {}
        for key, mine in sorted(held.items()):
            row = rows.get(key)
            if row is None or row.owner != self.owner or row.version != mine.version:
                continue  # lost: someone took it over after it expired
            if key not in self.streams or len(self._held) >= share:
                self.store.delete(key, row.version)  # surplus or no longer configured
                continue
            renewed = replace(row, expires_at=now + self.lease_s, version=row.version + 1)
            if self.store.write(renewed, row.version):
                self._held[key] = renewed
                rows[key] = renewed
        # take free or expired streams up to the share, in a per-owner order so that tasks
        # starting together try different streams first
        free = [k for k in self.streams
                if k not in self._held and (k not in rows or not rows[k].live(now))]
        free.sort(key=lambda k: zlib.crc32(f"{self.owner}/{k}".encode()))
        for key in free:
            if len(self._held) >= share:
                break
            old = rows.get(key)
            lease = Lease(key, self.owner, now + self.lease_s, (old.version + 1) if old else 1)
            if self.store.write(lease, old.version if old else None):
                self._held[key] = lease
        return frozenset(self._held)

    def release_all(self) -> None:
        """Give every lease back (clean shutdown), so others take them over at once."""
        for key, lease in list(self._held.items()):
            self.store.delete(key, lease.version)
        self._held.clear()
        if self._heartbeat is not None:
            self.store.delete(self._heartbeat.key, self._heartbeat.version)
            self._heartbeat = None

    def _beat(self, row: Lease | None, now: float) -> None:
        expected = row.version if row else None
        beat = Lease(TASK_PREFIX + self.owner, self.owner, now + self.lease_s,
                     (expected or 0) + 1)
        if self.store.write(beat, expected):
            self._heartbeat = beat

"""Two serve processes' Services sharing streams through leases (in memory, fake monitors)."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

from avmon.monitor.leases import LeaseManager, MemoryLeaseStore
from avmon.monitor.service import Service, parse_streams

ROOT = Path(__file__).resolve().parents[2]


class Idle:
    """A monitor that watches until stopped and announces nothing."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.stats = None

    def events(self):
        self._stop.wait()
        return
        yield

    def stop(self) -> None:
        self._stop.set()


class Null:
    def send(self, event) -> None:
        pass

    def close(self, timeout: float = 5.0) -> None:
        pass


def service(path: Path, store: MemoryLeaseStore, owner: str) -> Service:
    return Service(path, monitor_factory=lambda spec: Idle(), sink_factory=lambda s, i: Null(),
                   leases=LeaseManager(store, owner, lease_s=0.6), log=lambda m: None)


def test_services_split_the_streams_and_take_over_a_dead_ones(tmp_path):
    path = tmp_path / "streams.json"
    path.write_text(json.dumps({"streams": [{"id": f"c{i}", "source": f"udp://h:{i}"}
                                            for i in range(5)]}))
    store = MemoryLeaseStore()
    a, b = service(path, store, "a"), service(path, store, "b")
    try:
        for _ in range(8):
            a.reconcile(), b.reconcile()
            time.sleep(0.1)
        held_a, held_b = set(a.runners), set(b.runners)
        assert not held_a & held_b and held_a | held_b == {f"c{i}" for i in range(5)}
        assert {len(held_a), len(held_b)} == {2, 3}
        died = time.monotonic()  # "a" stops renewing: its process died
        while set(b.runners) != held_a | held_b:
            assert time.monotonic() - died < 0.6 + 0.5, "not taken over within a lease period"
            b.reconcile()
            time.sleep(0.05)
        assert all(r.alive for r in b.runners.values())
    finally:
        b.shutdown()
        for r in a.runners.values():
            r.stop()


def test_the_shipped_and_documented_streams_files_are_valid():
    parse_streams((ROOT / "cdk" / "streams.example.yaml").read_text())
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(streams:.*?)```", readme, re.S)
    assert block, "the README shows a streams file"
    parsed = parse_streams(block.group(1), "README")
    assert [s.id for s in parsed.streams] == ["channel-1", "channel-2"]

"""The live monitor's clocks, driven frame by frame with a fake wall clock (no decoding)."""

from __future__ import annotations

import numpy as np

from avmon.events import DefectEvent, utc_iso
from avmon.monitor.live import Monitor
from tests.unit.helpers import DT, frames_from, moving


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_loss_that_ends_on_a_restarted_clock_ends_when_the_media_came_back() -> None:
    clock = FakeClock()
    monitor = Monitor("udp://127.0.0.1:9", detectors=["freeze"], input_timeout=2.0, clock=clock)
    pictures = moving(np.random.default_rng(1), 250)
    events: list[DefectEvent] = []
    for frame in frames_from(pictures, start=1.4):  # 10 s on the sender's clock, live
        clock.t += DT
        events += monitor._media(frame)
    clock.t += 3.0  # the sender dies
    events += monitor._watchdog()
    assert [(e.detector, e.event) for e in events] == [("input_loss", "open")]
    clock.t += 5.0  # a new sender: its clock starts again at 1.4 s
    back_at = clock.t
    for frame in frames_from(pictures[:25], start=1.4):
        clock.t += DT
        events += monitor._media(frame)
    close = next(e for e in events if e.detector == "input_loss" and e.event == "close")
    assert close.details["resumed_at_s"] == 1.4
    # the media came back 8 s after the loss, not 10 s of the old clock after the new start
    assert close.end_utc == utc_iso(back_at + DT)
    assert [e.detector for e in events].count("gap") == 0  # the loss is the one alert

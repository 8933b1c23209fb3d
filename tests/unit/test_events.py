"""The one event schema: round trip, ids, and what it refuses."""

from __future__ import annotations

import json

import pytest

from avmon.errors import ConfigError
from avmon.events import DefectEvent, utc_iso


def _open() -> DefectEvent:
    return DefectEvent("open", "ch1", "freeze", 12.48, None, "2026-11-30T01:00:00.000Z", None,
                       0.93, {"k": 1})


def test_round_trip_through_json_line() -> None:
    event = _open()
    line = event.to_json_line()
    assert "\n" not in line
    data = json.loads(line)
    assert list(data)[:9] == ["event", "stream", "detector", "start_s", "end_s", "start_utc",
                              "end_utc", "confidence", "details"]
    assert data["end_s"] is None and data["end_utc"] is None
    assert DefectEvent.from_dict(data) == event


def test_ids_name_the_defect_and_the_event() -> None:
    opened = _open()
    closed = DefectEvent("close", "ch1", "freeze", 12.48, 15.0, opened.start_utc,
                         "2026-11-30T01:00:02.520Z", 0.93)
    assert opened.defect_id == closed.defect_id == "ch1/freeze/12.480"
    assert opened.id != closed.id
    first, second = opened.with_sequence(1), opened.with_sequence(2)
    assert len({opened.id, first.id, second.id}) == 3
    assert DefectEvent.from_dict(second.to_dict()).id == second.id


@pytest.mark.parametrize("record", [
    {"event": "opened", "stream": "s", "detector": "d", "start_s": 0},
    {"event": "close", "stream": "s", "detector": "d", "start_s": 0, "end_s": None},
    {"event": "open", "stream": "s", "start_s": 0},
    {"event": "open", "stream": "s", "detector": "d", "start_s": "soon"},
])
def test_bad_records_are_config_errors(record: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        DefectEvent.from_dict(record)


def test_utc_is_iso8601_zulu_with_milliseconds() -> None:
    assert utc_iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert utc_iso(None) is None

"""The segmenter accepts what the decoder accepts: a spliced MPEG-TS whose parts overlap."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from avmon.detectors.registry import NAMES
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize
from avmon.media.decode import MediaReader
from avmon.media.segment import split_segments
from avmon.monitor.analysis import analyze
from avmon.pipeline.config import PipelineConfig
from avmon.pipeline.contracts import AggregateTask, DetectorTask, SegmentJob
from avmon.pipeline.status import stream_status
from avmon.pipeline.steps import (
    Backoff,
    StateSettings,
    Upload,
    aggregate,
    convert,
    detect,
    ingest,
)
from tests.fakes import FakeNotifier, FakeStarter, FakeStateStore, FakeStore


@pytest.fixture(scope="module")
def spliced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 3 s TS parts, the second's timestamps starting 40 ms before the first ends (the
    shift made by the ffmpeg CLI), joined byte for byte as a splicer would."""
    d = tmp_path_factory.mktemp("splice")
    synthesize(SynthRequest(d / "a.ts", 3, tuple(parse_defects("black@1:0.5")), 160, 96, seed=1))
    synthesize(SynthRequest(d / "b.ts", 3, tuple(parse_defects("silence@0.8:1.5")), 160, 96,
                            seed=4))
    with MediaReader(d / "a.ts") as a:
        info = a.info()
        end_a = a.origin + info.duration_s
    with MediaReader(d / "b.ts") as b:
        start_b = b.origin
    # -output_ts_offset adds to the muxer's own 1.4 s start: aim the second part at end_a - 40 ms
    offset = end_a - 0.040 - start_b - 1.4
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(d / "b.ts"), "-c", "copy",
                    "-output_ts_offset", f"{offset:.3f}", str(d / "b2.ts")], check=True)
    out = d / "spliced.ts"
    out.write_bytes((d / "a.ts").read_bytes() + (d / "b2.ts").read_bytes())
    with MediaReader(d / "b2.ts") as b2:
        assert b2.origin < end_a - 0.02  # the parts really overlap
    return out


def test_a_spliced_stream_is_segmented_whole(spliced: Path) -> None:
    segments = list(split_segments(spliced, 2.0))
    assert len(segments) == 3
    assert [s.index for s in segments] == [0, 1, 2]
    assert all(len(s.data) > 0 for s in segments)


def test_segments_are_numbered_without_holes_when_keyframes_are_sparse(spliced: Path) -> None:
    """Keyframes further apart than the segment length: each segment still gets the next
    number (the run record counts them; a hole would be reported as a missing segment)."""
    segments = list(split_segments(spliced, 0.5))
    assert [s.index for s in segments] == list(range(len(segments)))
    starts = [s.start_s for s in segments]
    assert starts == sorted(starts) and len(segments) >= 3


def test_the_pipeline_finds_what_analyze_finds_on_a_splice(spliced: Path) -> None:
    store, starter, notifier = FakeStore(), FakeStarter(), FakeNotifier()
    states = FakeStateStore()
    data = spliced.read_bytes()
    store.objects["ingest/spliced.ts"] = data
    ingest(store, starter, Upload("ingest/spliced.ts", hashlib.md5(data).hexdigest(),
                                  "2026-11-30T01:00:00Z"), PipelineConfig(),
           Backoff(sleep=lambda s: None))
    for payload in starter.executions.values():
        manifest = convert(store, SegmentJob.from_event(payload), PipelineConfig())
        results = [[detect(store, n, DetectorTask(manifest=manifest, batch=b)).to_dict()
                    for b in manifest.batches] for n in NAMES]
        aggregate(store, notifier, AggregateTask.model_validate(
            {"manifest": manifest.to_dict(), "results": results}),
            state=StateSettings(states, PipelineConfig()))
    status = stream_status(store, "spliced.ts")
    assert status.finished
    found = {d.detector: d for d in status.result.report.defects}
    single = {d.detector: d for d in analyze(spliced).report.defects}
    assert set(found) == set(single) >= {"black", "silence"}
    # after the splice the segmenter continues each track's clock (the overlap, 40 ms, plus
    # one packet: up to 40 ms of video), where analyze keeps the overlapping timestamps
    for name, d in found.items():
        assert d.start_s == pytest.approx(single[name].start_s, abs=0.1 if name == "black"
                                          else 0.15), name

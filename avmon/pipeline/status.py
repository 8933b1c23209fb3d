"""What the deployed pipeline knows about a stream: its latest run, segment by segment.

``avmon report`` prints this. It never mixes runs (a re-upload is a new run, and only the
latest run by upload time is shown), and it is never silent about a segment: each of the run's
expected segments (the count Ingest recorded) is complete, incomplete (some detectors failed,
with their causes), failed (its conversion failed, with the cause) or missing (no report yet:
still running, or its execution ended before it could record anything). A live stream has one
run whose segments are numbered by the packager: a gap between the first and the last segment
seen is missing, unless its stream's playlists said it never arrived: then it is a ``gap``
finding in the report (with missing sequence numbers and discontinuities), not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from avmon.detectors.config import AnalysisConfig
from avmon.errors import MissingResourceError
from avmon.model import Defect
from avmon.pipeline import keys
from avmon.pipeline.contracts import PlaylistRecord, RunRecord, SegmentReport, StepError
from avmon.pipeline.ports import ObjectStore
from avmon.pipeline.steps import StreamResult, assemble


@dataclass
class StreamStatus:
    run: RunRecord
    result: StreamResult
    complete: list[int] = field(default_factory=list)
    incomplete: dict[int, dict[str, StepError]] = field(default_factory=dict)
    failed: dict[int, StepError] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)
    older_runs: int = 0

    @property
    def finished(self) -> bool:
        """Every expected segment was analysed by every detector."""
        return not (self.incomplete or self.failed or self.missing)

    def problems(self) -> list[str]:
        """One line per segment that is not complete, in segment order."""
        lines = [(s, f"segment {s}: missing (no report: still running, or never recorded)")
                 for s in self.missing]
        lines += [(s, f"segment {s}: failed: {why.error}: {why.cause}")
                  for s, why in self.failed.items()]
        lines += [(s, f"segment {s}: {name} failed: {why.error}: {why.cause}")
                  for s, dets in self.incomplete.items() for name, why in dets.items()]
        return [line for _, line in sorted(lines, key=lambda x: x[0])]

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.report.to_dict(),
                "run": self.run.to_dict(),
                "segments": {"expected": self.run.segments, "complete": self.complete,
                             "incomplete": {str(s): {n: w.to_dict() for n, w in d.items()}
                                            for s, d in self.incomplete.items()},
                             "failed": {str(s): w.to_dict() for s, w in self.failed.items()},
                             "missing": self.missing},
                "older_runs": self.older_runs}


def latest_run(store: ObjectStore, stream: str) -> tuple[RunRecord, int]:
    """The stream's latest run (by upload time) and how many runs came before it.

    Raises MissingResourceError if the stream has no run.
    """
    found = [k for k in store.list(keys.runs_of(stream))
             if k.endswith(".json") and "/" not in k.removeprefix(keys.runs_of(stream))]
    if not found:
        raise MissingResourceError(f"{keys.runs_of(stream)}: no runs of stream {stream!r}"
                                   " (is it the object key under ingest/, e.g. clip.mp4?)")
    runs = [RunRecord.model_validate(store.get_json(k)) for k in found]
    runs.sort(key=lambda r: (r.event_time, r.run))
    return runs[-1], len(runs) - 1


def stream_status(store: ObjectStore, stream: str, source: str | None = None,
                  analysis: AnalysisConfig | None = None) -> StreamStatus:
    """The latest run of ``stream``: its report and the state of each expected segment.

    Raises MissingResourceError if the stream has no run.
    """
    run, older = latest_run(store, stream)
    reports = {r.segment: r for r in (SegmentReport.model_validate(store.get_json(k))
                                      for k in store.list(keys.reports_of(stream, run.run)))}
    result = assemble(reports.values(), source or run.key, analysis)
    never_arrived: set[int] = set()
    if run.live:
        gaps = _playlist_gaps(store, stream)
        for gap in gaps:
            never_arrived.update(gap.details.get("segments", ()))
        result.report = replace(result.report, defects=(*result.report.defects, *gaps))
    status = StreamStatus(run, result, older_runs=older)
    if run.live:  # numbered by the packager, from wherever the stream was first seen
        expected = range(min(reports, default=0), max(reports, default=-1) + 1)
    else:
        expected = range(max(run.segments, max(reports, default=-1) + 1))
    for seg in expected:
        r = reports.get(seg)
        if r is None and seg in never_arrived:
            continue  # not a failure of the pipeline: a gap in the stream, reported as one
        if r is None:
            status.missing.append(seg)
        elif r.status == "failed":
            status.failed[seg] = r.failed.get("segment", StepError(error="unknown", cause=""))
        elif r.failed:
            status.incomplete[seg] = dict(r.failed)
        else:
            status.complete.append(seg)
    return status


def _playlist_gaps(store: ObjectStore, stream: str) -> list[Defect]:
    """The ``gap`` findings the stream's playlists gave (none without a playlist), each with its
    UTC start and end in its details where the playlist had program date-times."""
    record = PlaylistRecord.read(store, stream)
    if record is None:
        return []
    return [Defect.from_dict({**g, "details": {**g["details"], **{
        k: g[k] for k in ("start_utc", "end_utc") if g.get(k)}}}) for g in record.gaps]

"""The stream's running state across segments: one open and one close message per defect.

Every segment of a run is analysed by its own workflow execution, and executions finish in any
order. The aggregator of each one stores the segment's report (its evidence, as before) and then
merges the segment into the state of its stream and run: one item in a DynamoDB table keyed by
``stream`` and ``run``. The item is small (segment indices and times, the defects announced),
never evidence: the evidence stays in the segment reports in S3 and is read back from there.

**The item.** ``merged`` is the first segment not yet merged in order: segments ``first`` to
``merged - 1`` form the contiguous prefix. ``finished`` holds the segments that finished out of
order, waiting for the ones before them. ``tail`` lists the merged segments whose evidence the
next finalize reads: those since the start of the earliest defect still open, and at least the
last ``HORIZON_S`` seconds (what A/V sync needs to carry a measurement across a boundary: its
15 s correlation window plus a hop; its cues vote within 4 s), at most ``MAX_TAIL_S`` seconds.
``open`` are the defects announced and not yet closed, ``closed`` those closed while the tail
still shows them (so they are not announced twice). ``version`` makes every write conditional:
an aggregator that lost a race re-reads the item and merges again.

**When the prefix advances** the tail's evidence goes through the detectors' ``finalize``, the
same code as ``assemble`` and the single process, so the intervals are those of
``avmon analyze``. The result is compared with what was announced, as ``avmon watch`` does: a
defect not announced yet is opened (it has its minimum duration, or finalize would not list it);
an open one that ends before the prefix's end (by more than the detector's slack: it could go on
in the next segment) is closed with the end finalize gives; one that began and ended within the
new segments is opened and closed at once. When the last segment of a run with a known count (an
upload cut by ``ingest``), or of a live stream whose playlist said EXT-X-ENDLIST, is merged,
everything still open is closed; an ENDLIST playlist that lands after that merge closes it
itself (``finish``, called by ``ingest``). A/V sync's "could not measure here" findings are in
the report, never a message.

**Segments that fail.** A segment whose conversion failed has no evidence: a defect across it
ends where the evidence ends (its start) and one after it starts anew; the segment itself is a
``gap`` finding from its start to the next segment's start (announced open and closed).

**Segment order of a live stream.** An upload cut by ``ingest`` starts at segment 0. Live
segments (``ingest/<stream>/<n>.ts``) start wherever the stream was joined: the prefix starts at
the first segment to finish, and moves back to a smaller number that finishes later as long as
nothing has been announced; after that, a segment finishing with a number below the prefix's
start is recorded in ``late`` and its defects are not announced (its report is stored as for
any segment, and ``assemble`` includes it).

**Messages.** Each event is one SNS message: the ``DefectEvent`` JSON of ``avmon.events`` (the
schema ``avmon watch`` and ``avmon serve`` speak), the message attributes ``stream``,
``detector`` and ``event``, and a short subject. Ids follow the live monitor's rule
(``<stream>/<detector>/<start>``, with ``~<run>`` for a run other than the live one, so a
re-upload's defects are not taken for duplicates), so a consumer drops a repeat the same way.
Events are queued in the item (``outbox``) by the same conditional write that merges the
segment, published, then removed; an aggregator whose publish fails releases what it did not
send (the workflow's retry of the step publishes it), and one that dies in between leaves it
queued: the stream's next aggregator publishes what is older than a Lambda timeout again, with
the same ids (at least once, never lost).

**Times.** Segment times are on the stream's clock (an MPEG-TS stream's PTS in seconds, as
``avmon watch`` reports them). A job with ``start_utc`` (its segment's
EXT-X-PROGRAM-DATE-TIME) maps times to UTC: ``start_utc + (t - start_s)`` from the latest
anchored segment at or before ``t``. Without an anchor ``start_utc``/``end_utc`` are null.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from avmon.detectors.base import Evidence
from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import build, finalize_all
from avmon.errors import MissingResourceError, StorageThrottledError
from avmon.events import GAP, DefectEvent, EventKind, parse_utc, utc_iso
from avmon.model import Defect
from avmon.pipeline import keys
from avmon.pipeline.contracts import PlaylistRecord, RunRecord, SegmentReport
from avmon.pipeline.ports import Notifier, ObjectStore, StateStore

HORIZON_S = 20.0       # evidence kept behind the prefix's end, whatever is open
MAX_TAIL_S = 120.0     # ... and at most this much: an older open defect keeps its start
ATTEMPTS = 8           # conditional writes tried before the step is retried by the workflow


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Mark(_Model):
    """What the state keeps of one finished segment (its evidence is in its report)."""

    segment: int
    status: Literal["complete", "incomplete", "failed"]
    start_s: float
    end_s: float | None = None
    start_utc: str | None = None


class Announced(_Model):
    """A defect announced open and not closed yet."""

    finding: str
    detector: str
    defect_id: str
    start_s: float
    start_utc: str | None
    last_end: float
    confidence: float
    details: dict[str, Any] = Field(default_factory=dict)


class Closed(_Model):
    finding: str
    start_s: float
    end_s: float


class Queued(_Model):
    """An event written to the state, to be published (``queued_at``: POSIX seconds)."""

    queued_at: float
    event: dict[str, Any]


class StreamState(_Model):
    stream: str
    run: str
    version: int = 0
    first: int | None = None
    merged: int | None = None
    segments: int = 0                      # a run's segment count, 0 while unknown (live)
    last_segment: int | None = None        # a live stream's last, once a playlist ended it
    finished: dict[int, Mark] = Field(default_factory=dict)
    tail: list[Mark] = Field(default_factory=list)
    open: list[Announced] = Field(default_factory=list)
    closed: list[Closed] = Field(default_factory=list)
    outbox: list[Queued] = Field(default_factory=list)
    late: list[int] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every segment of a run with a known count is merged, or a live stream's merged
        prefix reached the last segment its EXT-X-ENDLIST playlist listed."""
        if self.first is None or self.merged is None:
            return False
        if self.last_segment is not None:
            return self.merged > self.last_segment
        return self.segments > 0 and self.merged >= self.first + self.segments

    def seen(self, segment: int) -> bool:
        return (segment in self.finished or segment in self.late
                or (self.first is not None and self.merged is not None
                    and self.first <= segment < self.merged))


@dataclass(frozen=True)
class MergeContext:
    """What a merge needs besides the state: the settings and the evidence of tail segments."""

    analysis: AnalysisConfig
    segment_seconds: float
    evidence: Callable[[int], Mapping[str, Sequence[Evidence]]]  # segment -> its evidence


@dataclass(frozen=True)
class Writes:
    """How a writer (an aggregator, or ingest ending a live stream) writes the state: events
    queued for longer than ``stale_after_s`` are taken for a dead writer's and published again;
    the item expires ``expire_days`` after its last write, with the reports."""

    stale_after_s: float
    expire_days: int
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


def finding_of(detector: str, details: Mapping[str, Any]) -> str:
    """Which finding a defect is (the live monitor's rule): its detector and, for one that
    reports several kinds (silence: programme, dead channel), the kind and its channels."""
    kind = details.get("kind")
    if kind is None:
        return detector
    channels = details.get("channels")
    return (f"{detector}/{kind}/{'+'.join(map(str, channels))}" if channels
            else f"{detector}/{kind}")


def slack_s(detector: str, analysis: AnalysisConfig) -> float:
    """How close to the prefix's end a defect's end must be to possibly go on in the next
    segment. The prefix ends where its last segment's media ends, the later of its pictures and
    its sound: a picture defect ends within a few frames of it (250 ms: two frames at 8 fps),
    a sound defect within an audio frame or two and the detector's joining gap (a segment's
    audio can end 20-40 ms before its pictures), and A/V sync within the distance over which
    its cues vote."""
    if detector == "av_sync":
        return analysis.av_sync.neighbourhood_s + 1.0
    if detector == "clipping":
        return analysis.clipping.merge_gap_s + 0.1
    if detector == "silence":
        return 0.1
    return 0.25


def merge(state: StreamState, mark: Mark, ctx: MergeContext) -> tuple[StreamState, list[
        DefectEvent]]:
    """Merge one finished segment into ``state``: the new state and the events it causes.

    Pure (the evidence comes through ``ctx``). A segment already merged or waiting is a
    redelivery: the state comes back unchanged, with no events.
    """
    if state.seen(mark.segment):
        return state, []
    s = state.model_copy(deep=True)
    if s.first is None:
        s.first = 0 if s.segments else mark.segment
        s.merged = s.first
    assert s.merged is not None and s.first is not None
    if mark.segment < s.first:
        if s.open or s.closed or s.outbox or s.segments:
            s.late = sorted({*s.late, mark.segment})
            return s, []
        # nothing announced yet: the stream starts earlier than the first segment to finish
        s.finished.update({m.segment: m for m in s.tail})
        s.tail, s.first, s.merged = [], mark.segment, mark.segment
    s.finished[mark.segment] = mark
    advanced: list[Mark] = []
    while s.merged in s.finished:
        advanced.append(s.finished.pop(s.merged))
        s.merged += 1
    if not advanced:
        return s, []
    s.tail += advanced
    events = _diff(s, ctx)
    _trim(s)
    return s, events


def _edge(tail: Sequence[Mark]) -> float:
    """Where the evidence of the merged prefix ends."""
    last = tail[-1]
    return last.end_s if last.end_s is not None else last.start_s


def _gaps(tail: Sequence[Mark], final: bool, segment_seconds: float) -> list[Defect]:
    out = []
    for i, m in enumerate(tail):
        if m.status != "failed":
            continue
        if i + 1 < len(tail):
            end = tail[i + 1].start_s
        elif final:
            end = m.start_s + segment_seconds  # the run's last segment: its nominal length
        else:
            end = m.start_s  # still open: the next segment says where the gap ends
        out.append(Defect(GAP, m.start_s, max(end, m.start_s), 1.0,
                          {"segment": m.segment, "reason": "the segment failed"}))
    return out


def _diff(s: StreamState, ctx: MergeContext) -> list[DefectEvent]:
    analysis = ctx.analysis
    evidence: dict[str, list[Evidence]] = {}
    for m in s.tail:
        if m.status == "failed":
            continue
        for name, evs in ctx.evidence(m.segment).items():
            evidence.setdefault(name, []).extend(evs)
    found = [d for d in finalize_all(build(analysis, list(evidence)), evidence)
             if not d.unmeasured]  # "could not measure here" is in the report, not an alert
    final = s.complete
    found += _gaps(s.tail, final, ctx.segment_seconds)
    edge = _edge(s.tail)
    events: list[DefectEvent] = []
    matched: set[int] = set()
    for d in sorted(found, key=lambda d: (d.start_s, d.detector)):
        at_edge = not final and (d.end_s >= edge - slack_s(d.detector, analysis)
                                 or (d.detector == GAP and d.end_s <= d.start_s))
        finding = finding_of(d.detector, d.details)
        k = next((i for i, o in enumerate(s.open) if i not in matched
                  and o.finding == finding and d.start_s <= o.last_end + 0.05
                  and d.end_s >= o.start_s - 0.05), None)
        if k is not None:
            matched.add(k)
            o = s.open[k]
            o.last_end = max(o.last_end, d.end_s)
            if not at_edge:
                o.details = dict(d.details) or o.details
            continue
        if any(c.finding == finding and d.start_s <= c.end_s + 0.05 and d.end_s >= c.start_s
               for c in s.closed):
            continue  # announced and closed already
        o = Announced(finding=finding, detector=d.detector, defect_id=_defect_id(s, d),
                      start_s=d.start_s, start_utc=_utc(s.tail, d.start_s), last_end=d.end_s,
                      confidence=d.confidence, details=dict(d.details))
        s.open.append(o)
        matched.add(len(s.open) - 1)
        events.append(_event(s, "open", o, None))
    still: list[Announced] = []
    for i, o in enumerate(s.open):
        ends = final or i not in matched or o.last_end < edge - slack_s(o.detector, analysis)
        if o.detector == GAP and o.last_end <= o.start_s and not final:
            ends = False  # a failed segment's gap ends where the next segment starts
        if ends:
            end = max(o.last_end, o.start_s)
            events.append(_event(s, "close", o, end))
            s.closed.append(Closed(finding=o.finding, start_s=o.start_s, end_s=end))
        else:
            still.append(o)
    s.open = still
    return events


def _trim(s: StreamState) -> None:
    """Keep the tail bounded: the horizon, and the earliest open defect (within MAX_TAIL_S)."""
    edge = _edge(s.tail)
    keep_from = edge - HORIZON_S
    if s.open:
        keep_from = min(keep_from, max(min(o.start_s for o in s.open), edge - MAX_TAIL_S))
    # a segment is kept if any of it lies after keep_from (its end is the next one's start)
    kept = [m for i, m in enumerate(s.tail)
            if (s.tail[i + 1].start_s if i + 1 < len(s.tail) else edge) > keep_from]
    s.tail = kept or s.tail[-1:]
    start = s.tail[0].start_s
    s.closed = [c for c in s.closed if c.end_s >= start - 1.0]


def _defect_id(s: StreamState, d: Defect) -> str:
    run = "" if s.run == keys.LIVE_RUN else f"~{s.run}"
    return f"{s.stream}/{d.detector}/{d.start_s:.3f}{run}"


def _utc(tail: Sequence[Mark], t: float) -> str | None:
    anchored = [m for m in tail if m.start_utc]
    if not anchored:
        return None
    m = max((m for m in anchored if m.start_s <= t), key=lambda m: m.start_s,
            default=anchored[0])
    return utc_iso(parse_utc(str(m.start_utc)) + (t - m.start_s))


def _event(s: StreamState, kind: EventKind, o: Announced, end: float | None) -> DefectEvent:
    return DefectEvent(event=kind, stream=s.stream, detector=o.detector, start_s=o.start_s,
                       end_s=end, start_utc=o.start_utc,
                       end_utc=None if end is None else _utc(s.tail, end),
                       confidence=o.confidence, details=dict(o.details),
                       defect_id=o.defect_id)


# -- the step around the merge: read, merge, conditional write, publish -----------------------
@dataclass
class Advance:
    """What one aggregator did to the stream's state."""

    merged: int | None        # the prefix's end after the merge
    published: list[DefectEvent]
    attempts: int


def advance(states: StateStore, store: ObjectStore, notifier: Notifier, report: SegmentReport,
            ctx_of: Callable[[Callable[[int], Mapping[str, Sequence[Evidence]]]], MergeContext],
            writes: Writes) -> Advance:
    """Merge ``report``'s segment into its stream's state and publish what that opened or
    closed (and events another aggregator queued and did not publish within
    ``writes.stale_after_s``).

    Raises StorageThrottledError when the state stays contended or throttled after every
    attempt (the workflow retries the step; the merge is idempotent), MissingResourceError if
    a tail segment's report is gone.
    """
    ctx = ctx_of(_evidence_reader(store, report.stream, report.run,
                                  {report.segment: report.evidence}))
    mark = Mark(segment=report.segment, status=report.status, start_s=report.start_s,
                end_s=report.end_s, start_utc=report.start_utc)
    return _commit(states, store, notifier, report.stream, report.run,
                   lambda state: merge(state, mark, ctx), writes)


def finish(states: StateStore, store: ObjectStore, notifier: Notifier, stream: str,
           ctx_of: Callable[[Callable[[int], Mapping[str, Sequence[Evidence]]]], MergeContext],
           writes: Writes) -> Advance:
    """A live stream's playlist said EXT-X-ENDLIST: close what its state still holds open.

    The aggregator that merges the last segment listed closes everything, knowing from the
    playlist record that it is the last. A packager writes that playlist right after the last
    segment, long before the segment's workflow ends, so that is the rule; a playlist that
    lands after the merge (a packager that ends the list later, an upload retried) finds the
    prefix complete and defects still open: this closes them as that merge would have, with
    the ends the detectors' finalize gives on the tail. Before the prefix reaches the last
    segment it does nothing (the merge that reaches it closes); after a close, nothing either.

    Raises StorageThrottledError when the state stays contended, MissingResourceError if a
    tail segment's report is gone.
    """
    ctx = ctx_of(_evidence_reader(store, stream, keys.LIVE_RUN, {}))

    def close_open(state: StreamState) -> tuple[StreamState, list[DefectEvent]]:
        if not state.complete or not state.open:
            return state, []
        s = state.model_copy(deep=True)
        events = _diff(s, ctx)
        _trim(s)
        return s, events

    return _commit(states, store, notifier, stream, keys.LIVE_RUN, close_open, writes)


def _evidence_reader(store: ObjectStore, stream: str, run: str,
                     known: dict[int, Mapping[str, Sequence[Evidence]]],
                     ) -> Callable[[int], Mapping[str, Sequence[Evidence]]]:
    """segment -> its evidence, read from its report once (``known``: already at hand)."""
    def evidence(segment: int) -> Mapping[str, Sequence[Evidence]]:
        if segment not in known:
            key = keys.report(stream, run, segment)
            known[segment] = SegmentReport.model_validate(store.get_json(key)).evidence
        return known[segment]
    return evidence


def _commit(states: StateStore, store: ObjectStore, notifier: Notifier, stream: str, run: str,
            step: Callable[[StreamState], tuple[StreamState, list[DefectEvent]]],
            writes: Writes) -> Advance:
    """Apply ``step`` to the stream's state (with its last segment, once the playlist record
    knows it) by a conditional write, and publish the events it caused and those another
    writer queued and did not publish within ``writes.stale_after_s``; on a lost race, again."""
    last_listed = functools.cache(lambda: _last_listed(store, stream))
    for attempt in range(1, ATTEMPTS + 1):
        state = _with_end(load(states, store, stream, run), last_listed)
        new, events = step(state)
        now = writes.clock()
        stale = [q for q in new.outbox if q.queued_at < now - writes.stale_after_s]
        mine = [Queued(queued_at=now, event=e.to_dict()) for e in events]
        if not mine and not stale and new == state:
            return Advance(state.merged, [], attempt)
        new = new.model_copy(deep=True)
        # claimed now: another aggregator takes them over only after another timeout
        claimed = [Queued(queued_at=now, event=q.event) for q in stale]
        new.outbox = [q for q in new.outbox if q not in stale] + claimed + mine
        if not states.save(stream, run, _document(new), state.version,
                           _expires(now, writes.expire_days)):
            writes.sleep(random.uniform(0, 0.05 * 2 ** min(attempt, 5)))
            continue
        new.version = state.version + 1
        out = [DefectEvent.from_dict(q.event) for q in stale + mine]
        sent: list[DefectEvent] = []
        try:
            for event in out:
                notifier.announce(event)
                sent.append(event)
        except Exception:
            # what was not sent is released (queued at 0): the workflow's retry of this step,
            # or the stream's next aggregator, publishes it without waiting for a timeout
            _settle(states, new, {e.id for e in sent}, {e.id for e in out[len(sent):]},
                    writes)
            raise
        _settle(states, new, {e.id for e in out}, set(), writes)
        return Advance(new.merged, out, attempt)
    raise StorageThrottledError(f"state of {stream} run {run}: still contended"
                                f" after {ATTEMPTS} conditional writes")


def _settle(states: StateStore, state: StreamState, sent: set[str], released: set[str],
            writes: Writes) -> None:
    """Remove published events from the outbox and release unpublished ones (whoever wrote
    since, the change is applied to what they wrote)."""
    if not sent and not released:
        return
    for _ in range(ATTEMPTS):
        fresh = state.model_copy(deep=True)
        fresh.outbox = [q if q.event.get("id") not in released else
                        Queued(queued_at=0.0, event=q.event)
                        for q in fresh.outbox if q.event.get("id") not in sent]
        if states.save(state.stream, state.run, _document(fresh), state.version,
                       _expires(writes.clock(), writes.expire_days)):
            return
        loaded = states.load(state.stream, state.run)
        if loaded is None:
            return
        doc, version = loaded
        state = StreamState.model_validate({**doc, "version": version})
    # still contended: the events stay queued and are published again later (same ids)


def load(states: StateStore, store: ObjectStore, stream: str, run: str) -> StreamState:
    """The stream's state, or a new one (with the run's segment count when it has one).

    Raises MissingResourceError if the run has no record.
    """
    loaded = states.load(stream, run)
    if loaded is not None:
        doc, version = loaded
        return StreamState.model_validate({**doc, "version": version})
    try:
        record = RunRecord.model_validate(store.get_json(keys.run_record(stream, run)))
    except MissingResourceError:
        if run != keys.LIVE_RUN:
            raise
        record = None
    segments = 0 if record is None or record.live else record.segments
    return StreamState(stream=stream, run=run, segments=segments)


def _with_end(state: StreamState, last_listed: Callable[[], int | None]) -> StreamState:
    """A live stream's state with its last segment, once the stream's playlist record says
    EXT-X-ENDLIST was seen (a packager writes that playlist after the last segment, so it is
    read by then; one that lands after the last segment's merge closes what is open itself:
    ``finish``)."""
    if state.run != keys.LIVE_RUN or state.last_segment is not None:
        return state
    last = last_listed()
    return state if last is None else state.model_copy(update={"last_segment": last})


def _last_listed(store: ObjectStore, stream: str) -> int | None:
    """The last segment of a live stream whose playlist said EXT-X-ENDLIST (None before)."""
    record = PlaylistRecord.read(store, stream)
    if record is None or not record.ended or not record.entries:
        return None
    return record.entries[-1].segment


def _document(state: StreamState) -> dict[str, Any]:
    return state.model_dump(mode="json", exclude={"version"})


def _expires(now: float, days: int) -> int:
    return int(now + days * 86400)

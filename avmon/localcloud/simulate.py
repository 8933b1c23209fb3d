"""``avmon simulate``: one input through the deployed serverless pipeline on moto.

The input goes in as it would on AWS (a PutObject under ``ingest/``), every execution is waited
for, and the report is assembled from the segment reports the aggregator stored. Usage is what
was measured: requests counted on the clients (botocore events), state transitions counted in
the execution histories, Lambda time measured around each handler. Every message the pipeline
published to its topic is listed under ``alerts``.

An HLS playlist (a local path or an http(s) URL) goes in as a packager delivers a live stream:
each segment is uploaded under its own name to ``ingest/<folder>/``, then the playlist as the
packager would have written it at that moment (the segments so far, a sliding window of
``PLAYLIST_WINDOW``, ENDLIST only after the last), one by one; ``live`` paces the uploads at the
segments' durations. A live playlist is followed until its ENDLIST, until it stops growing, or
until interrupted. A segment that cannot be read (missing file, HTTP 404) is not uploaded: the
playlist still lists it, so the pipeline reports it as a ``gap``, as it would on AWS.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from avmon.errors import EXIT_INCOMPLETE, AvmonError, MediaOpenError
from avmon.localcloud.deploy import LocalCloud
from avmon.localcloud.limits import DEFAULT_MAX_EXECUTIONS
from avmon.media.decode import probe
from avmon.media.playlist import Playlist, parse_playlist, render_playlist
from avmon.pipeline import keys, ports
from avmon.pipeline.config import PipelineConfig
from avmon.pipeline.status import StreamStatus, stream_status

Progress = Callable[[int, int, int], None]  # segments done, total, executions running


@dataclass
class Simulation:
    report: dict[str, Any]
    usage: dict[str, Any]
    failed_segments: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    run: str = ""
    alerts: list[dict[str, Any]] = field(default_factory=list)
    playlist: dict[str, Any] | None = None  # what was fed, when the input was a playlist
    # what the lifecycle emulation deleted (not usage: expirations are neither requests nor
    # billed) and how many executions ran at once
    local: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when every segment was analysed by every detector; EXIT_INCOMPLETE otherwise
        (what was found is still reported, and ``failed_segments`` lists what failed)."""
        return EXIT_INCOMPLETE if self.failed_segments else 0

    def to_dict(self) -> dict[str, Any]:
        out = {**self.report, "usage": self.usage, "run": self.run,
               "segments": {"total": self.usage["executions"],
                            "failed": self.failed_segments},
               "pipeline": self.config, "alerts": self.alerts, "local": self.local}
        if self.playlist is not None:
            out["playlist"] = self.playlist
        return out


def ingest_key(path: Path) -> str:
    """Where ``simulate`` uploads ``path``: its stream is its file name."""
    return f"{keys.INGEST}{path.name}"


def simulate(path: Path, config: PipelineConfig | None = None,
             progress: Progress | None = None, cloud: LocalCloud | None = None,
             timeout_s: float = 3600.0, key: str | None = None,
             max_executions: int = DEFAULT_MAX_EXECUTIONS) -> Simulation:
    """Run ``path`` through the pipeline, uploaded to ``key`` (default ``ingest/<file name>``).
    Pass ``cloud`` to reuse a deployment (a re-upload is a new run of the same stream);
    ``max_executions`` applies to a fresh one.

    Raises MediaOpenError for input that is not media (the same check and message as analyze),
    AvmonError if the ingest step fails.
    """
    probe(path)  # fail fast, with analyze's message, before deploying anything
    if cloud is None:
        with LocalCloud(config, max_executions=max_executions) as fresh:
            return _run(fresh, path, key or ingest_key(path), progress, timeout_s)
    return _run(cloud, path, key or ingest_key(path), progress, timeout_s)


def _run(cloud: LocalCloud, path: Path, key: str, progress: Progress | None,
         timeout_s: float) -> Simulation:
    tap = cloud.alert_tap()
    tap.drain()  # a reused deployment: what earlier runs published is theirs
    cloud.meter.reset()
    run = _ingest(cloud, path, key)
    executions, unfinished = _wait(cloud, run["started"], progress, timeout_s)
    transitions = sum(cloud.transitions(e["executionArn"]) for e in executions)
    collected = _collect(cloud, keys.stream_id_of(run["key"]), path, run["run"], executions,
                         unfinished)
    usage = {"executions": len(executions), "state_transitions": transitions,
             **cloud.meter.to_dict()}
    return Simulation(collected.report, usage, collected.failed, cloud.object_keys(),
                      cloud.config.to_dict(), run["run"], tap.drain(),
                      local=_local(cloud))


def _local(cloud: LocalCloud) -> dict[str, Any]:
    """How the simulation held the run: executions at once, objects the emulated lifecycle
    rule deleted."""
    pool = cloud.executions_pool
    return {"max_executions": pool.limit, "peak_executions": pool.peak,
            "expired": cloud.lifecycle.to_dict() if cloud.lifecycle else None}


@dataclass
class _Collected:
    report: dict[str, Any]
    failed: list[dict[str, Any]]
    durations: list[float]
    status: StreamStatus


def _collect(cloud: LocalCloud, stream: str, path: Path | str, run: str,
             executions: list[dict[str, Any]], unfinished: Sequence[str] = ()) -> _Collected:
    """The stream's status (what ``avmon report`` shows) once this run's executions ended
    (``unfinished``: those a Ctrl-C left unstarted): every segment not analysed in full is
    listed, with its cause."""
    assert cloud.deployment is not None
    durations: list[float] = []
    sfn = cloud.client("stepfunctions")
    for e in executions:
        d = sfn.describe_execution(executionArn=e["executionArn"])
        if d.get("stopDate") and d.get("startDate"):
            durations.append((d["stopDate"] - d["startDate"]).total_seconds())
    status = stream_status(ports.S3Store(cloud.deployment.bucket, cloud.client("s3")), stream,
                           str(path))
    if status.run.run != run:
        raise AvmonError(f"{path}: the latest run of {stream} is {status.run.run}, not {run}")
    names = {keys.segment_of_execution(e["name"]): e["name"] for e in executions}
    given_up = {keys.segment_of_execution(n): n for n in unfinished}
    failed: list[dict[str, Any]] = []
    for seg in status.missing:
        if seg in given_up:
            failed.append({"segment": seg, "execution": given_up[seg],
                           "status": "interrupted", "error": "",
                           "cause": "the run was interrupted before this execution ran"})
            continue
        failed.append({"segment": seg, "execution": names.get(seg, ""), "status": "missing",
                       "error": "", "cause": "no segment report"})
    for seg, why in status.failed.items():
        failed.append({"segment": seg, "execution": names.get(seg, ""), "status": "failed",
                       **why.to_dict()})
    for seg, dets in status.incomplete.items():
        for detector, why in dets.items():
            failed.append({"segment": seg, "detector": detector, "status": "incomplete",
                           **why.to_dict()})
    failed.sort(key=lambda f: (f["segment"], f.get("detector", "")))
    return _Collected(status.result.report.to_dict(), failed, durations, status)


def simulate_many(paths: list[Path], config: PipelineConfig | None = None,
                  throttle: Any = None, progress: Progress | None = None,
                  timeout_s: float = 3600.0,
                  max_executions: int = DEFAULT_MAX_EXECUTIONS) -> dict[str, Any]:
    """Several streams at once through one deployment, optionally under a StateTransition
    bucket (a TransitionThrottle): what each stream found and how long its segments took.

    Raises MediaOpenError for an input that is not media, before deploying anything.
    """
    for path in paths:
        probe(path)
    if len({p.name for p in paths}) != len(paths):
        raise AvmonError("two inputs have the same file name (the stream's name); rename one")
    with LocalCloud(config, max_executions=max_executions) as cloud:
        tap = cloud.alert_tap()
        if throttle is not None:
            throttle.install()
        try:
            cloud.meter.reset()
            # all in flight together: each upload starts its executions, none is waited for
            runs = [_ingest(cloud, p, ingest_key(p)) for p in paths]
            executions, unfinished = _wait(cloud, [n for r in runs for n in r["started"]],
                                           progress, timeout_s)
        finally:
            if throttle is not None:
                throttle.uninstall()
        streams = []
        for path, run in zip(paths, runs, strict=True):
            started = set(run["started"])
            mine = [e for e in executions if e["name"] in started]
            c = _collect(cloud, keys.stream_id_of(run["key"]), path, run["run"], mine,
                         [n for n in unfinished if n in started])
            streams.append({
                "source": str(path), "segments": len(mine),
                "failed": len({f["segment"] for f in c.failed}),
                "failures": c.failed,
                "defects": c.report["defects"],
                "execution_s": {"mean": round(sum(c.durations) / max(len(c.durations), 1), 2),
                                "max": round(max(c.durations, default=0.0), 2)},
            })
        usage = {"executions": len(executions), **cloud.meter.to_dict()}
        alerts = tap.drain()
        local = _local(cloud)
    return {"streams": streams, "usage": usage, "local": local,
            "throttle": throttle.to_dict() if throttle is not None else None, "alerts": alerts}


def _ingest(cloud: LocalCloud, path: Path | str, key: str,
            data: bytes | None = None) -> dict[str, Any]:
    """Upload ``path`` (or ``data``) to ``key`` (the notification runs the ingest Lambda);
    return the run the ingest step made of it. Raises AvmonError with the ingest step's cause
    if it failed."""
    before = cloud.invoker.latest.get("Ingest")
    cloud.upload(Path(path).read_bytes() if data is None else data, key)
    ingest = cloud.invoker.latest.get("Ingest")
    if ingest is None or ingest is before or ingest.error:
        why = cloud.invoker.failures[-1] if cloud.invoker.failures else "it never ran"
        raise AvmonError(f"{path}: the ingest step failed: {why.split(': ', 1)[-1]}")
    run: dict[str, Any] = ingest.result["runs"][0]
    return run


# -- an HLS playlist, as a packager delivers it -----------------------------------------------
PLAYLIST_WINDOW = 10     # segments a rendered playlist lists (MediaLive's default, 10)
STALE_TARGETS = 6.0      # a live playlist unchanged for this many target durations has ended
FETCH_TIMEOUT_S = 10.0


def is_playlist(source: str) -> bool:
    """An HLS playlist input: an http(s) URL, a ``.m3u8``/``.m3u`` path, or a file that starts
    with ``#EXTM3U``."""
    if urlparse(source).scheme in ("http", "https"):
        return True
    path = Path(source)
    if path.suffix.lower() in (".m3u8", ".m3u"):
        return True
    try:
        with path.open("rb") as f:
            return f.read(7) == b"#EXTM3U"
    except OSError:
        return False


def fetch(location: str) -> bytes:
    """The bytes at a local path or an http(s) URL. Raises OSError (urllib's errors are
    OSErrors) with the reason."""
    if urlparse(location).scheme in ("http", "https"):
        with urllib.request.urlopen(location, timeout=FETCH_TIMEOUT_S) as resp:
            data: bytes = resp.read()
            return data
    return Path(location).read_bytes()


def _why(exc: OSError) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return exc.strerror or str(exc)


def read_playlist(location: str) -> Playlist:
    """Fetch and parse a media playlist. Raises MediaOpenError (one line: unreachable, not a
    playlist, or one the pipeline cannot take: a master playlist, fMP4, segments whose names
    would not land as live segments)."""
    try:
        text = fetch(location).decode("utf-8", "replace")
    except OSError as exc:
        raise MediaOpenError(f"{location}: cannot read the playlist: {_why(exc)}") from None
    playlist = parse_playlist(text, location)
    if playlist.unsupported == "a master playlist":
        raise MediaOpenError(f"{location}: a master playlist; give one rendition's media"
                             " playlist")
    if playlist.init:
        raise MediaOpenError(f"{location}: fragmented MP4 segments (EXT-X-MAP); the pipeline"
                             " decodes MPEG-TS segments")
    for seg in playlist.segments:  # each must land as a live segment, not as a whole file
        if keys.live_segment(keys.resolve(f"{keys.INGEST}stream/index.m3u8", seg.name)) is None:
            raise MediaOpenError(
                f"{location}: segment {seg.name!r} is not named as a packager names live"
                " segments (a name ending in its number, .ts)")
    return playlist


def playlist_folder(location: str) -> str:
    """The folder under ingest/ a playlist's stream is uploaded to: the playlist's file name
    without its extension (``.../ch1.m3u8`` -> ``ch1``), or its folder's name for a generic
    one (``.../ch1/index.m3u8`` -> ``ch1``)."""
    parts = [p for p in urlparse(location).path.split("/") if p] if "://" in location else \
        list(Path(location).resolve().parts)
    stem = Path(parts[-1]).stem if parts else "stream"
    if stem in ("index", "playlist", "master", "stream", "prog_index", "chunklist") and \
            len(parts) > 1:
        stem = parts[-2]
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in stem) or "stream"


@dataclass
class _Feed:
    """What the packager simulation uploaded."""

    folder: str
    playlist_key: str
    uploaded: list[int] = field(default_factory=list)           # media sequence numbers
    skipped: list[dict[str, Any]] = field(default_factory=list)  # could not be read
    refused: list[dict[str, Any]] = field(default_factory=list)  # the ingest step failed
    started: list[str] = field(default_factory=list)            # executions
    stream: str = ""
    ended: bool = False
    stopped: str = ""       # why following stopped, when not at ENDLIST


def simulate_playlist(location: str, config: PipelineConfig | None = None, *,
                      live: bool = False, progress: Progress | None = None,
                      timeout_s: float = 3600.0, stop: threading.Event | None = None,
                      sleep: Callable[[float], None] = time.sleep,
                      cloud: LocalCloud | None = None, folder: str | None = None,
                      max_executions: int = DEFAULT_MAX_EXECUTIONS) -> Simulation:
    """Feed an HLS stream to the pipeline as a packager would (see the module's docstring),
    wait for every execution, and return the stream's report, usage and alerts. Pass ``cloud``
    to reuse a deployment, ``folder`` to choose the folder under ingest/ (default
    ``playlist_folder``).

    Raises MediaOpenError for a playlist that cannot be read or taken (before deploying),
    AvmonError if no segment could be ingested.
    """
    first = read_playlist(location)
    if cloud is None:
        with LocalCloud(config, max_executions=max_executions) as fresh:
            return _feed_playlist(fresh, location, first, live, progress, timeout_s,
                                  stop or threading.Event(), sleep, folder)
    return _feed_playlist(cloud, location, first, live, progress, timeout_s,
                          stop or threading.Event(), sleep, folder)


def _feed_playlist(cloud: LocalCloud, location: str, first: Playlist, live: bool,
                   progress: Progress | None, timeout_s: float, stop: threading.Event,
                   sleep: Callable[[float], None], folder: str | None) -> Simulation:
    tap = cloud.alert_tap()
    tap.drain()
    cloud.meter.reset()
    name = Path(urlparse(location).path).name or "index.m3u8"
    folder = folder or playlist_folder(location)
    feed = _Feed(folder, f"{keys.INGEST}{folder}/{name}")
    try:
        _follow(cloud, location, first, feed, live, stop, sleep)
    except KeyboardInterrupt:  # Ctrl-C ends a live feed: what was uploaded is reported
        feed.stopped = "interrupted"
    if not feed.uploaded:
        raise AvmonError(f"{location}: no segment was ingested"
                         f" ({len(feed.skipped)} unreadable, {len(feed.refused)} refused)")
    executions, unfinished = _wait(cloud, feed.started, progress, timeout_s)
    transitions = sum(cloud.transitions(e["executionArn"]) for e in executions)
    collected = _collect(cloud, feed.stream, location, keys.LIVE_RUN, executions, unfinished)
    usage = {"executions": len(executions), "state_transitions": transitions,
             **cloud.meter.to_dict()}
    fed = {"location": location, "stream": feed.stream, "folder": f"{keys.INGEST}{folder}/",
           "uploaded": len(feed.uploaded), "unreadable": feed.skipped,
           "refused": feed.refused, "ended": feed.ended, "stopped": feed.stopped or None,
           "live_pace": live}
    return Simulation(collected.report, usage, collected.failed + feed.refused,
                      cloud.object_keys(), cloud.config.to_dict(), keys.LIVE_RUN,
                      tap.drain(), fed, _local(cloud))


def _follow(cloud: LocalCloud, location: str, playlist: Playlist, feed: _Feed, live: bool,
            stop: threading.Event, sleep: Callable[[float], None]) -> None:
    """Upload new segments, each followed by the playlist, until ENDLIST, staleness or stop."""
    last: int | None = None
    grew_at = time.monotonic()
    while True:
        for i, seg in enumerate(playlist.segments):
            if stop.is_set():
                feed.stopped = "stopped"
                return
            if last is not None and seg.sequence <= last:
                continue
            began = time.monotonic()
            key = keys.resolve(feed.playlist_key, seg.name or seg.uri)
            try:
                data = fetch(seg.uri)
            except OSError as exc:
                feed.skipped.append({"media_sequence": seg.sequence, "segment": seg.name,
                                     "reason": _why(exc)})
                data = None
            if data is not None:
                try:
                    run = _ingest(cloud, seg.uri, key, data)
                    feed.started += run["started"]
                    feed.uploaded.append(seg.sequence)
                except AvmonError as exc:  # e.g. a segment that does not decode
                    feed.refused.append({"segment": seg.sequence, "execution": key,
                                         "status": "failed", "error": "ingest",
                                         "cause": str(exc)})
            listed = playlist.segments[max(0, i + 1 - PLAYLIST_WINDOW): i + 1]
            ended = playlist.ended and i == len(playlist.segments) - 1
            text = render_playlist(playlist, listed, ended).encode()
            read = _ingest(cloud, location, feed.playlist_key, text)
            feed.stream = read.get("stream") or feed.stream
            last, grew_at = seg.sequence, time.monotonic()
            if live:  # a packager writes a segment once it has lasted its duration
                sleep(max(0.0, seg.duration - (time.monotonic() - began)))
        if playlist.ended:
            feed.ended = True
            return
        if time.monotonic() - grew_at > STALE_TARGETS * playlist.target_duration:
            feed.stopped = (f"the playlist did not grow for {STALE_TARGETS:g} target"
                            " durations")
            return
        sleep(playlist.target_duration / 2)
        try:
            playlist = read_playlist(location)
            feed.stopped = ""
        except MediaOpenError as exc:  # a reload failed: keep trying until it is stale
            feed.stopped = str(exc)


def _wait(cloud: LocalCloud, names: list[str], progress: Progress | None,
          timeout_s: float) -> tuple[list[dict[str, Any]], list[str]]:
    """The executions named ``names`` once every one has ended (watched in the execution
    pool, which costs nothing; ListExecutions over thousands would, five times a second),
    and none unfinished. On Ctrl-C the executions running finish, those still waiting never
    start: the ended ones, and the names of the others."""
    deadline = time.monotonic() + timeout_s
    wanted = set(names)
    assert cloud.deployment is not None
    prefix = cloud.deployment.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
    arns = {f"{prefix}:{n}" for n in wanted}
    ended = cloud.executions_pool.transitions
    try:
        while True:
            done = sum(1 for a in arns if a in ended)
            running = len(wanted) - done
            if progress is not None:
                progress(done, len(wanted), running)
            if running == 0:
                return [e for e in cloud.executions() if e["name"] in wanted], []
            if time.monotonic() > deadline:
                raise AvmonError(f"{running} execution(s) still running after"
                                 f" {timeout_s:.0f} s")
            time.sleep(0.2)
    except KeyboardInterrupt:
        cloud.executions_pool.uninstall()
        unfinished = sorted(n for n in wanted if f"{prefix}:{n}" not in ended)
        finished = wanted.difference(unfinished)
        return [e for e in cloud.executions() if e["name"] in finished], unfinished

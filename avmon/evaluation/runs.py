"""``avmon evaluate``: analyse every labelled stream in a folder and score it, per detector and per
content kind (synthetic / real footage), optionally against ffmpeg's filters on the same streams.

Every defect found on a defect-free control of real footage is listed by name: a false alarm on
footage nobody here made is the failure that matters most to an operator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from avmon.detectors.registry import NAMES
from avmon.errors import ConfigError
from avmon.evaluation.peers import PEER_DETECTORS, PEER_SETTINGS, run_peers
from avmon.evaluation.scoring import Score, score
from avmon.evaluation.synth import load_truth
from avmon.media.decode import MediaReader
from avmon.model import Defect
from avmon.monitor.analysis import analyze

TRUTH_SUFFIX = ".truth.json"
KIND_LABELS = {"synthetic": "synthetic", "real": "real footage"}


def labelled_streams(folder: Path) -> list[tuple[Path, Path]]:
    """(stream, truth) pairs in ``folder``. Raises ConfigError if there are none."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a directory")
    pairs = []
    for truth in sorted(folder.glob(f"*{TRUTH_SUFFIX}")):
        stream = truth.with_name(truth.name.removesuffix(TRUTH_SUFFIX))
        if stream.exists():
            pairs.append((stream, truth))
    if not pairs:
        raise ConfigError(f"{folder}: no stream with a {TRUTH_SUFFIX} file "
                          "(make some with 'avmon corpus DIR')")
    return pairs


def stream_label(truth_file: Path) -> dict[str, Any]:
    """Kind (synthetic / real), content and whether the stream is a defect-free control.
    Truth files written before kinds existed are synthetic. Raises ConfigError if unreadable."""
    try:
        record = json.loads(truth_file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{truth_file}: not a truth file ({exc})") from None
    defects = record.get("defects") or []
    return {"kind": str(record.get("kind", "synthetic")),
            "content": str(record.get("content", "")),
            "control": bool(record.get("control", not defects))}


def _evaluate_one(stream: Path, truth_file: Path, vs_ffmpeg: bool) -> dict[str, Any]:
    truth = load_truth(truth_file)
    label = stream_label(truth_file)
    found = analyze(stream).report.defects
    entry: dict[str, Any] = {"stream": stream.name, **label, "truth": len(truth),
                             "found": len(found)}
    per = score(truth, found, NAMES)
    entry["scores"] = {n: s for n, s in per.items()}
    entry["errors"] = {n: s.fp + s.fn for n, s in per.items() if s.fp + s.fn}
    alarms: list[tuple[str, Defect]] = []
    if label["control"]:
        alarms += [("avmon", d) for d in found if not d.unmeasured]
    if vs_ffmpeg:
        with MediaReader(stream) as reader:
            origin, has_a, has_v = reader.origin, reader.has_audio, reader.has_video
        peer_found = run_peers(stream, has_a, has_v, origin)
        peer = score(truth, peer_found, PEER_DETECTORS)
        entry["peer_scores"] = peer
        entry["ffmpeg_errors"] = {n: s.fp + s.fn for n, s in peer.items() if s.fp + s.fn}
        if label["control"]:
            alarms += [("ffmpeg", d) for d in peer_found]
    entry["false_alarms"] = [
        {"tool": tool, "detector": d.detector, "start_s": round(d.start_s, 2),
         "end_s": round(d.end_s, 2)} for tool, d in alarms]
    return entry


def evaluate_dir(folder: Path, vs_ffmpeg: bool = False, jobs: int = 1,
                 on_stream: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Score every labelled stream in ``folder``, ``jobs`` streams at a time.

    Raises ConfigError if the folder holds no labelled stream, PeerToolError if ffmpeg fails.
    """
    pairs = labelled_streams(folder)

    def one(pair: tuple[Path, Path]) -> dict[str, Any]:
        entry = _evaluate_one(pair[0], pair[1], vs_ffmpeg)
        if on_stream is not None:
            on_stream(pair[0].name)
        return entry

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        entries = list(pool.map(one, pairs))
    kinds = sorted({e["kind"] for e in entries}, key=lambda k: (k != "synthetic", k))
    totals = {name: Score() for name in NAMES}
    peer_totals = {name: Score() for name in PEER_DETECTORS}
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        ours = {name: Score() for name in NAMES}
        theirs = {name: Score() for name in PEER_DETECTORS}
        members = [e for e in entries if e["kind"] == kind]
        for e in members:
            for name, s in e["scores"].items():
                ours[name].add(s)
                totals[name].add(s)
            for name, s in e.get("peer_scores", {}).items():
                theirs[name].add(s)
                peer_totals[name].add(s)
        by_kind[kind] = {"streams": len(members),
                         "controls": sum(1 for e in members if e["control"]),
                         "avmon": {n: s.to_dict() for n, s in ours.items()}}
        if vs_ffmpeg:
            by_kind[kind]["ffmpeg"] = {n: s.to_dict() for n, s in theirs.items()}
    for e in entries:
        e.pop("scores")
        e.pop("peer_scores", None)
    out: dict[str, Any] = {
        "streams": entries,
        "avmon": {n: s.to_dict() for n, s in totals.items()},
        "by_kind": by_kind,
        "control_false_alarms": [
            {"stream": e["stream"], "kind": e["kind"], **a}
            for e in entries if e["control"] for a in e["false_alarms"]],
    }
    if vs_ffmpeg:
        out["ffmpeg"] = {n: s.to_dict() for n, s in peer_totals.items()}
        out["ffmpeg_settings"] = PEER_SETTINGS
    return out


def format_scores(result: dict[str, Any]) -> str:
    """The evaluation as text: one table (per content kind and overall), then every stream with
    errors, then every false alarm on a real-footage control."""
    def f(x: float | None, fmt: str = "{:.2f}") -> str:
        return "-" if x is None else fmt.format(x)

    kinds = list(result["by_kind"])
    n = len(result["streams"])
    counts = ", ".join(f"{v['streams']} {KIND_LABELS.get(k, k)} ({v['controls']} controls)"
                       for k, v in result["by_kind"].items())
    lines = [f"{n} labelled streams: {counts}", ""]
    head = f"{'':<17}{'':<7}"
    sub = f"{'detector':<17}{'tool':<7}"
    for k in kinds:
        head += f"| {KIND_LABELS.get(k, k):<21}"
        sub += f"|{'TP':>4}{'FP':>4}{'FN':>4}{'F1':>6}   "
    head += f"| {'all':<16}"
    sub += f"|{'F1':>5}{'onset ms':>10}"
    lines += [head, sub]
    for name in NAMES:
        tools = ["avmon"] + (["ffmpeg"] if "ffmpeg" in result else [])
        for tool in tools:
            overall = result[tool].get(name)
            if overall is None:
                lines.append(f"{name:<17}{tool:<7}| (no ffmpeg filter)")
                continue
            row = f"{name:<17}{tool:<7}"
            for k in kinds:
                s = result["by_kind"][k][tool][name]
                row += f"|{s['tp']:>4}{s['fp']:>4}{s['fn']:>4}{f(s['f1']):>6}   "
            row += f"|{f(overall['f1']):>5}{f(overall['mean_onset_error_ms'], '{:.0f}'):>10}"
            lines.append(row)
    misses = [e for e in result["streams"] if e["errors"]]
    if misses:
        lines += ["", "avmon errors (FP+FN) by stream:"]
        lines += [f"  {e['stream']} ({KIND_LABELS.get(e['kind'], e['kind'])}): "
                  + ", ".join(f"{k} {v}" for k, v in e["errors"].items()) for e in misses]
    real_alarms = [a for a in result["control_false_alarms"] if a["kind"] != "synthetic"]
    controls = [e["stream"] for e in result["streams"] if e["control"] and e["kind"] != "synthetic"]
    if controls:
        lines += ["", f"false alarms on the {len(controls)} clean real-footage controls:"]
        for stream in controls:
            mine = [a for a in real_alarms if a["stream"] == stream]
            lines.append(f"  {stream}: {f'{len(mine)} false alarms' if mine else 'none'}")
            lines += [f"    {a['tool']:<7}{a['detector']:<17}{a['start_s']:>7.2f} -"
                      f"{a['end_s']:>7.2f} s" for a in mine]
    return "\n".join(line.rstrip() for line in lines)

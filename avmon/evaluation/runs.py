"""``avmon evaluate``: analyse every labelled stream in a folder and score it, optionally
against ffmpeg's filters on the same streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avmon.detectors.registry import NAMES
from avmon.errors import ConfigError
from avmon.evaluation.peers import PEER_DETECTORS, PEER_SETTINGS, run_peers
from avmon.evaluation.scoring import Score, score
from avmon.evaluation.synth import load_truth
from avmon.media.decode import MediaReader
from avmon.monitor.analysis import analyze

TRUTH_SUFFIX = ".truth.json"


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


def evaluate_dir(folder: Path, vs_ffmpeg: bool = False) -> dict[str, Any]:
    totals = {name: Score() for name in NAMES}
    peer_totals = {name: Score() for name in PEER_DETECTORS}
    streams = []
    for stream, truth_file in labelled_streams(folder):
        truth = load_truth(truth_file)
        result = analyze(stream)
        per = score(truth, result.report.defects, NAMES)
        for name, s in per.items():
            totals[name].add(s)
        entry: dict[str, Any] = {"stream": stream.name, "truth": len(truth),
                                 "found": len(result.report.defects),
                                 "errors": {n: s.fp + s.fn for n, s in per.items() if s.fp + s.fn}}
        if vs_ffmpeg:
            with MediaReader(stream) as reader:
                origin, has_a, has_v = reader.origin, reader.has_audio, reader.has_video
            peer = score(truth, run_peers(stream, has_a, has_v, origin), PEER_DETECTORS)
            for name, s in peer.items():
                peer_totals[name].add(s)
            entry["ffmpeg_errors"] = {n: s.fp + s.fn for n, s in peer.items() if s.fp + s.fn}
        streams.append(entry)
    out: dict[str, Any] = {
        "streams": streams,
        "avmon": {n: s.to_dict() for n, s in totals.items()},
    }
    if vs_ffmpeg:
        out["ffmpeg"] = {n: s.to_dict() for n, s in peer_totals.items()}
        out["ffmpeg_settings"] = PEER_SETTINGS
    return out


def format_scores(result: dict[str, Any]) -> str:
    def f(x: float | None, fmt: str = "{:.2f}") -> str:
        return "-" if x is None else fmt.format(x)

    lines = [f"{len(result['streams'])} labelled streams", ""]
    head = f"{'detector':<17}{'tool':<8}{'TP':>4}{'FP':>4}{'FN':>4}{'prec':>7}{'recall':>7}" \
           f"{'F1':>6}{'onset ms':>10}"
    lines.append(head)
    for name in NAMES:
        tools = [("avmon", result["avmon"][name])]
        if "ffmpeg" in result:
            tools.append(("ffmpeg", result["ffmpeg"].get(name)))
        for tool, s in tools:
            if s is None:
                lines.append(f"{name:<17}{tool:<8}  (no ffmpeg filter)")
                continue
            lines.append(f"{name:<17}{tool:<8}{s['tp']:>4}{s['fp']:>4}{s['fn']:>4}"
                         f"{f(s['precision']):>7}{f(s['recall']):>7}{f(s['f1']):>6}"
                         f"{f(s['mean_onset_error_ms'], '{:.0f}'):>10}")
    misses = [(e["stream"], e["errors"]) for e in result["streams"] if e["errors"]]
    if misses:
        lines += ["", "avmon errors (FP+FN) by stream:"]
        lines += [f"  {s}: {', '.join(f'{k} {v}' for k, v in errs.items())}" for s, errs in misses]
    return "\n".join(lines)

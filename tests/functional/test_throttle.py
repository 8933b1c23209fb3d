"""Several streams at once under a scaled-down StateTransition bucket: executions wait."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from avmon.errors import ConfigError
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize
from avmon.localcloud.simulate import simulate_many
from avmon.localcloud.throttle import TransitionThrottle

pytestmark = pytest.mark.functional
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def test_executions_are_throttled_and_delayed(tmp_path: Path) -> None:
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    synthesize(SynthRequest(a, 4, tuple(parse_defects("black@1:1")), 160, 96, seed=1))
    synthesize(SynthRequest(b, 4, tuple(parse_defects("silence@1:1.5")), 160, 96, seed=2))
    throttle = TransitionThrottle(bucket=10, refill_per_s=4)  # 90 transitions need >= 20 s
    result = simulate_many([a, b], throttle=throttle)
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
    assert CommonStateField._eval_body.__name__ == "_eval_body"
    assert CommonStateField._eval_body.__module__.startswith("moto")  # patch removed
    streams = {Path(s["source"]).name: s for s in result["streams"]}
    assert [d["detector"] for d in streams["a.mp4"]["defects"]] == ["black"]
    assert [d["detector"] for d in streams["b.mp4"]["defects"]] == ["silence"]
    assert all(s["failed"] == 0 for s in streams.values())
    t = result["throttle"]
    segments = sum(s["segments"] for s in streams.values())
    assert t["transitions"] == segments * 15  # every state entered took a token
    assert t["delayed"] > 0
    assert t["waited_s"] > 0
    # beyond the first 10 tokens, 20 a second: the last state cannot start before then
    assert max(s["execution_s"]["max"] for s in streams.values()) >= \
        (t["transitions"] - 10) / 20 * 0.9


def test_bucket_must_be_usable() -> None:
    with pytest.raises(ConfigError):
        TransitionThrottle(bucket=0, refill_per_s=1)

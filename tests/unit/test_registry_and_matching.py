"""The registry is the one list of detectors; the matcher is the one way to pair defects."""

from dataclasses import fields

import pytest

from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import CAMEL, NAMES, build, finalize_all
from avmon.errors import ConfigError
from avmon.evaluation.matching import match, same_defect_tolerance
from avmon.evaluation.synth import DEFECT_KINDS
from avmon.model import Defect


def test_every_registered_detector_has_settings_and_nothing_else_does():
    assert tuple(f.name for f in fields(AnalysisConfig)) == NAMES


def test_names_derive_from_the_registry():
    assert DEFECT_KINDS == NAMES
    assert [d.name for d in build(AnalysisConfig())] == list(NAMES)
    assert CAMEL["block_corruption"] == "BlockCorruption"
    assert CAMEL["av_sync"] == "AvSync"


def test_build_refuses_an_unknown_name():
    with pytest.raises(ConfigError, match="unknown detector"):
        build(AnalysisConfig(), ["freeze", "wobble"])


def test_finalize_all_without_evidence_finds_nothing():
    assert finalize_all(build(AnalysisConfig()), {}) == []


def d(name: str, a: float, b: float) -> Defect:
    return Defect(name, a, b)


def test_match_pairs_closest_onset_once_and_reports_the_rest():
    truth = [d("freeze", 10, 12), d("black", 20, 21)]
    found = [d("freeze", 10.3, 12), d("freeze", 10.1, 11.9), d("silence", 20, 21)]
    m = match(truth, found)
    assert [(p.expected.detector, p.found.start_s) for p in m.pairs] == [("freeze", 10.1)]
    assert m.missed == (truth[1],)
    assert {x.start_s for x in m.extra} == {10.3, 20}
    assert not m.exact


def test_match_needs_overlap_and_onset_within_tolerance():
    assert match([d("black", 5, 6)], [d("black", 6.5, 7)]).missed      # no overlap
    assert match([d("black", 5, 9)], [d("black", 5.6, 9)]).missed      # onset 0.6 s off
    assert match([d("black", 5, 9)], [d("black", 5.4, 9)]).exact


def test_same_defect_tolerance_is_tight_except_for_av_sync():
    a = [d("freeze", 3, 5), d("av_sync", 19, 28)]
    b = [d("freeze", 3.02, 5.01), d("av_sync", 18.7, 27.6)]
    assert match(a, b, same_defect_tolerance, ends_too=True).exact
    b_late_end = [d("freeze", 3.0, 5.2), d("av_sync", 19, 28)]
    assert not match(a, b_late_end, same_defect_tolerance, ends_too=True).exact


def test_a_could_not_measure_finding_is_reported_apart_never_matched():
    unknown = Defect("av_sync", 0, 12, 0.0, {"status": "unknown"})
    real = d("black", 3, 4)
    assert unknown.unmeasured
    assert not real.unmeasured
    assert match([real], [real, unknown]).exact     # no false positive
    assert match([unknown], []).exact               # no miss

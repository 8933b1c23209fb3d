"""Audio out of the decoder: the planar copy equals PyAV's own conversion."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from avmon.frames import AudioBuffer
from avmon.media.decode import MediaReader, planar_float

pytestmark = pytest.mark.functional


def test_planar_float_equals_to_ndarray(clip: Path) -> None:
    with av.open(str(clip)) as container:
        stream = container.streams.audio[0]
        frames = [f for p in container.demux(stream) for f in p.decode()]
    assert frames and frames[0].format.name == "fltp" and len(frames[0].planes) == 2
    for frame in frames:
        samples = planar_float(frame)
        assert samples.dtype == np.float32 and samples.flags.c_contiguous
        np.testing.assert_array_equal(samples, frame.to_ndarray())


def test_reader_audio_is_every_decoded_sample_once(clip: Path) -> None:
    with av.open(str(clip)) as container:
        stream = container.streams.audio[0]
        expected = np.concatenate([f.to_ndarray() for p in container.demux(stream)
                                   for f in p.decode()], axis=1)
    with MediaReader(clip) as reader:
        bufs = [b for b in reader.frames(video=False) if isinstance(b, AudioBuffer)]
    np.testing.assert_array_equal(np.concatenate([b.samples for b in bufs], axis=1), expected)
    assert bufs[0].channels == ("FL", "FR")

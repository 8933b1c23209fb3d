"""Everything that touches PyAV (and so FFmpeg's libraries) lives in this package.

``decode`` turns any input FFmpeg can open into numpy frames and audio buffers; ``encode`` writes
the labelled test streams. No other module imports ``av``.
"""

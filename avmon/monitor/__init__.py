"""The single-process design: decode once, every detector on frames in memory (``analysis``)."""

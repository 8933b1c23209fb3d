"""Labelled test streams (``synth``, ``corpus``), scoring against truth, and ffmpeg as a peer."""

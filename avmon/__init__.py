"""avmon: audio/video defect monitoring, from the Prime Video case study."""

__version__ = "0.1.0"

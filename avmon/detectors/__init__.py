"""The six defect detectors. Pure numpy: arrays and a frozen config in, defects out.

One module each (``freeze``, ``black``, ``blocks``, ``silence``, ``clipping``, ``avsync``);
``registry.build(config, names)`` assembles them; ``base`` holds what they share.
"""

NAMES = ("freeze", "black", "block_corruption", "silence", "clipping", "av_sync")

"""The defect detectors. Pure numpy: arrays and a frozen config in, defects out.

One module each (``freeze``, ``black``, ``blocks``, ``silence``, ``clipping``, ``avsync``);
``registry`` lists them once (``NAMES``, ``build``, ``finalize_all``); ``config`` holds their
settings together; ``base`` what they share.
"""

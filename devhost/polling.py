"""The polling rhythm shared by queue and blob listeners: poll again at once after work, back off when idle."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Exponential back-off from `minimum` to `maximum` seconds while a source stays empty (as the host does)."""

    minimum: float
    maximum: float
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.maximum = max(self.maximum, self.minimum)
        self.current = self.minimum

    def reset(self) -> None:
        self.current = self.minimum

    def idle(self) -> float:
        """The delay before the next poll after an empty one; doubles up to the cap."""
        delay = self.current
        self.current = min(self.current * 2, self.maximum)
        return delay


@dataclass
class Poller:
    """A listener's thread control: host-wide `stop` (take no new work) and `exit` (end the thread), and a wake-up."""

    stop: threading.Event
    exit: threading.Event
    wake: threading.Event = field(default_factory=threading.Event)

    def sleep(self, seconds: float) -> None:
        """Wait up to `seconds`, less if nudged or told to exit."""
        if seconds > 0 and not self.exit.is_set():
            self.wake.wait(seconds)
        self.wake.clear()

    def nudge(self) -> None:
        self.wake.set()

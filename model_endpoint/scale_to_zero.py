"""A chat model that scales to zero when idle and takes a while to wake, as a SageMaker inference
component with ``MinCopyCount=0`` does, so the local stack shows the cloud's "waking up" state.

In the cloud the component keeps no copy once it has been idle long enough; a call that arrives
then is refused with a ``ValidationError`` ("... has no capacity ...") while the endpoint itself
stays ``InService``, a copy starts (minutes), and every call is refused until it is up. Here the
"copy" is only a deadline: the model stays loaded, the server merely refuses as SageMaker would.

The server starts asleep, as a component does once idle after a deploy, so the very first chat
request of a ``strata dev`` session shows the waking state instead of needing ``idle_s`` of wait.
Every method runs on the server's event loop, so the state needs no lock.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ("NO_CAPACITY_MESSAGE", "Capacity", "ScaleToZero")

logger = logging.getLogger(__name__)

NO_CAPACITY_MESSAGE = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress "
    "(if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API."
)
"""SageMaker's own words for a call to a component with no copy: Strata's provider recognizes them."""


class Capacity(enum.Enum):
    ASLEEP = "asleep"  # no copy: the next call starts a wake
    WAKING = "waking"  # a copy is starting: calls are refused until it is up
    AWAKE = "awake"  # calls are served, each one keeps the copy for another idle period


@dataclass(slots=True)
class ScaleToZero:
    """The capacity of the chat model: asleep, waking or awake, as a function of the clock.

    ``clock`` returns seconds (``time.monotonic`` by default); tests pass a fake one.
    """

    idle_s: float
    wake_s: float
    clock: Callable[[], float] = time.monotonic
    # When the copy last had work (a served call, or the end of its wake); None: no copy yet.
    _last_active_at: float | None = field(default=None, init=False)
    _wake_ends_at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.idle_s <= 0:
            raise ValueError(f"idle_s must be more than 0, got {self.idle_s}")
        if self.wake_s < 0:
            raise ValueError(f"wake_s must be at least 0, got {self.wake_s}")

    @property
    def capacity(self) -> Capacity:
        return self._capacity_at(self.clock())

    def admit(self) -> bool:
        """Whether a chat invocation arriving now is served; a refused one may start the wake."""
        now = self.clock()
        capacity = self._capacity_at(now)
        if capacity is Capacity.AWAKE:
            self._last_active_at = now
            return True
        if capacity is Capacity.ASLEEP:
            self._wake_ends_at = now + self.wake_s
            logger.info("the chat model is scaled to zero; waking it (%.0f s), refusing calls meanwhile", self.wake_s)
        return False

    def _capacity_at(self, now: float) -> Capacity:
        if self._wake_ends_at is not None:
            if now < self._wake_ends_at:
                return Capacity.WAKING
            # The copy came up at the deadline: its idle period counts from then, not from the call.
            self._last_active_at, self._wake_ends_at = self._wake_ends_at, None
        if self._last_active_at is None or now - self._last_active_at >= self.idle_s:
            return Capacity.ASLEEP
        return Capacity.AWAKE

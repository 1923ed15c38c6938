"""The snapshot handle: which directory snapshot a request is decided on, and how a reload puts a new one in force.

One request (its authorization and the app it lets run) is decided on one snapshot, even when a reload swaps
another in meanwhile: the shells pin the snapshot in force when a request begins and unpin it at the end. The
reloaders check for changes through the refresh hooks, cheaply, before each authentication, and ``swap`` a
validated snapshot in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from .directory import Snapshot

__all__ = ["PinToken", "SnapshotHandle"]

#: The snapshot pinned for the request being served (per task or thread), with the handle it belongs to: a pin of
#: one IAM is invisible to another in the same process.
_PINNED: ContextVar[tuple[SnapshotHandle, Snapshot] | None] = ContextVar("iam_pinned_snapshot", default=None)

#: What ``pin_request`` returns and ``unpin`` takes.
PinToken = Token[tuple["SnapshotHandle", Snapshot] | None]


class SnapshotHandle:
    """The snapshot in force, the one pinned for the current request, and the refresh hooks of the reloaders.

    Thread-safe: the snapshot in force is replaced by one assignment, and a pin lives in a context variable, so
    each task or thread sees its own.
    """

    def __init__(self, snapshot: Snapshot, *, clock: Callable[[], float]) -> None:
        self._in_force = snapshot
        self._clock = clock
        #: Called with ``now`` before each authentication (a reloader's cheap change check). A hook raises to refuse
        #: the request (no directory to decide on: 503).
        self.refresh_hooks: list[Callable[[float], None]] = []

    def __repr__(self) -> str:
        return f"SnapshotHandle({self._in_force!r})"

    @property
    def current(self) -> Snapshot:
        """The snapshot this request is decided on: the one pinned for it (``pin``), else the one in force."""
        pinned = _PINNED.get()
        if pinned is not None and pinned[0] is self:
            return pinned[1]
        return self._in_force

    @property
    def in_force(self) -> Snapshot:
        """The snapshot a request beginning now would be pinned to, whatever the current request is pinned to."""
        return self._in_force

    @contextmanager
    def pin(self) -> Iterator[Snapshot]:
        """Decide everything inside the block on the current snapshot, even if a reload swaps it meanwhile."""
        token = self.pin_request()
        try:
            yield self.current
        finally:
            _PINNED.reset(token)

    def pin_request(self, snapshot: Snapshot | None = None) -> PinToken:
        """``pin`` for shells whose request spans separate hooks (Flask): give the token to ``unpin`` at the end.
        ``snapshot`` is the current one when the caller has just read it (a remembered answer's, found current)."""
        return _PINNED.set((self, self.current if snapshot is None else snapshot))

    @staticmethod
    def unpin(token: PinToken) -> None:
        """End the pin of ``pin_request``."""
        _PINNED.reset(token)

    def refresh(self, now: float | None = None) -> None:
        """Run the refresh hooks. Raises what they raise (no directory to decide on: 503)."""
        now = self._clock() if now is None else now
        for hook in self.refresh_hooks:
            hook(now)

    def swap(self, snapshot: Snapshot) -> None:
        """Put a validated snapshot in force (requests in flight finish on the one they pinned)."""
        self._in_force = snapshot

"""A real headless Chromium (Debian's ``chromium``) driven over its DevTools protocol, for the HTML report's test.

``Chromium.start(folder)`` runs the browser with a throwaway profile in ``folder`` and attaches to one page;
``call`` sends a command and returns its result; ``events`` keeps every event the page sent (requests, console,
log entries, dialogs). ``close`` ends the browser and every process it started. Without a ``chromium`` binary the
test is skipped, except under CI, where that is an error (``chromium_binary``).

The protocol goes over one websocket to the browser (``websockets``' sync client, already a test dependency), with
the page attached as a flat session, so no HTTP endpoint of the browser is used.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

__all__ = ["Chromium", "chromium_binary"]

_READY_TIMEOUT = 20.0
_CALL_TIMEOUT = 20.0
#: Headless, and nothing in the background: this machine's network is closed, and a connection the browser makes
#: on its own (updates, sync, QUIC probes) would show up as a request the page did not make.
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--remote-debugging-port=0", "--window-size=1280,900", "--hide-scrollbars")


def chromium_binary() -> str:
    """The chromium on PATH; skips the test without one, except under CI, where that is an error."""
    binary = shutil.which("chromium")
    if binary is None:
        message = "chromium is not on PATH (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


class Chromium:
    """One browser process (its own process group) and one page of it."""

    def __init__(self, process: subprocess.Popen[bytes], socket: ClientConnection, stack: contextlib.ExitStack) -> None:
        self._process = process
        self._socket = socket
        self._stack = stack
        self._next = 0
        self._session = ""
        self.events: list[dict[str, Any]] = []

    @classmethod
    def start(cls, folder: Path) -> Chromium:
        profile = folder / "profile"
        process = subprocess.Popen([chromium_binary(), *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        stack = contextlib.ExitStack()
        try:
            port, path = _endpoint(profile / "DevToolsActivePort", process)
            socket = stack.enter_context(connect(f"ws://127.0.0.1:{port}{path}", max_size=None,
                                                 open_timeout=_READY_TIMEOUT))
            browser = cls(process, socket, stack)
        except BaseException:
            _end(process)
            raise
        try:
            target = browser.call("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
            browser._session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                            page=False)["sessionId"]
            for domain in ("Page", "Network", "Runtime", "Log"):
                browser.call(f"{domain}.enable")
        except BaseException:
            browser.close()
            raise
        return browser

    def call(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True) -> dict[str, Any]:
        """Send a command (to the page, or with ``page=False`` to the browser) and return its result."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if page:
            message["sessionId"] = self._session
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + _CALL_TIMEOUT
        while True:
            reply = self._receive(deadline, method)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def wait_for(self, method: str) -> dict[str, Any]:
        """The next event named ``method`` (one already kept counts, once)."""
        deadline = time.monotonic() + _CALL_TIMEOUT
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event["method"] == method and not event.get("_taken"):
                    event["_taken"] = True
                    return event
            seen = len(self.events)
            self._receive(deadline, method)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        found = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})
        if "exceptionDetails" in found:
            raise AssertionError(f"{expression}: {found['exceptionDetails']}")
        return found["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element ``selector`` names."""
        box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                   "clickCount": 1})

    def press(self, key: str, code: int, text: str = "") -> None:
        """A key pressed and released where the focus is: ``("Enter", 13, "\\r")`` (its text is what activates a
        button, as a real keyboard's does), ``("Escape", 27)``."""
        down: dict[str, Any] = {"type": "keyDown" if text else "rawKeyDown", "key": key, "code": key,
                                "windowsVirtualKeyCode": code}
        if text:
            down["text"] = text
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": key, "windowsVirtualKeyCode": code})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()
        _end(self._process)

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"chromium: no answer to {waiting_for}")
        reply: dict[str, Any] = json.loads(self._socket.recv(timeout=remaining))
        if "method" in reply:
            self.events.append(reply)
        return reply


def _endpoint(announced: Path, process: subprocess.Popen[bytes]) -> tuple[int, str]:
    """The DevTools port and browser path chromium writes into its profile once it listens."""
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited at start (status {process.returncode})")
        lines = announced.read_text().split() if announced.exists() else []
        if len(lines) == 2:
            return int(lines[0]), lines[1]
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


def _end(process: subprocess.Popen[bytes]) -> None:
    """Stop the browser and its helpers (renderer, GPU, zygote: the process group it was started in)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    # A helper that outlived the browser: its group is still there (exited helpers stay in it until init reaps them).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)

"""Debian's headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`).

No port, no extra package: the protocol's JSON messages, each ended by a NUL byte, go to Chromium's fd 3
and come back on its fd 4. Chromium runs sandbox-free and offline as in tests/test_browser.py (no GPU,
first-run, background networking, component updates or sync) with a throwaway profile. Every page's
console errors, uncaught exceptions and network requests are recorded. Used by tests/test_explorer.py
and benchmarks/explorer.py.
"""

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BASH = shutil.which("bash") or "/bin/bash"
# Headless, offline and quiet: what every browser test starts Chromium with.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
FLAGS = (*BASE_FLAGS, "--remote-debugging-pipe")
KEY_CODES = {"ArrowLeft": 37, "ArrowUp": 38, "ArrowRight": 39, "ArrowDown": 40, "Home": 36, "End": 35, "Tab": 9}


class BrowserError(RuntimeError):
    """Chromium answered with an error, did not answer in time, or a page's script threw."""


class Browser:
    """One Chromium process; `page()` opens a tab. Use as a context manager, or call `close()`."""

    def __init__(self, profile: Path, log: Path | None = None):
        if CHROMIUM is None:
            raise BrowserError("Debian's chromium is not installed (apt-get install chromium)")
        commands_read, self._commands = os.pipe()  # Chromium reads its commands on fd 3
        self._answers, answers_write = os.pipe()  # and writes answers and events on fd 4
        self._log = open(log or os.devnull, "wb")
        # bash puts the two pipe ends on fds 3 and 4 and becomes Chromium (no preexec_fn: threads run here;
        # bash, not dash, which redirects only fds 0-9).
        wiring = f'exec "$0" "$@" 3<&{commands_read} 4>&{answers_write}'
        self.process = subprocess.Popen(
            [BASH, "-c", wiring, CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(commands_read, answers_write),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        os.close(commands_read)
        os.close(answers_write)
        self.events: list[dict[str, Any]] = []
        self._answered: dict[int, dict[str, Any]] = {}
        self._closed = False
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                break
            *messages, buffer = (buffer + chunk).split(b"\0")
            with self._changed:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answered[message["id"]] = message
                    else:
                        self.events.append(message)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = 60):
        """One protocol command; its result, or BrowserError."""
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._commands, data) :]
        with self._changed:
            self._changed.wait_for(lambda: ident in self._answered or self._closed, timeout)
            answer = self._answered.pop(ident, None)
        if answer is None:
            raise BrowserError(f"{method}: no answer from chromium in {timeout} s")
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer["result"]

    def page(self, width: int = 1280, height: int = 900, mobile: bool = False) -> "Page":
        """A new tab of width x height CSS pixels (a phone's touch screen with `mobile`), recording its events."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        for domain in ("Page", "Runtime", "Network", "Log"):
            page.send(f"{domain}.enable")
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}
        page.send("Emulation.setDeviceMetricsOverride", metrics)
        if mobile:
            page.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
        return page

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(BrowserError, OSError):
                self.send("Browser.close", timeout=10)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            os.close(self._commands)
        self._reader.join(timeout=10)
        with contextlib.suppress(OSError):
            os.close(self._answers)
        self._log.close()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab: commands, script evaluation, input, and what it logged and requested."""

    def __init__(self, browser: Browser, session: str, target: str):
        self.browser, self.session, self.target = browser, session, target

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        return self.browser.send(method, params, self.session, timeout)

    def events(self, method: str) -> list[dict[str, Any]]:
        with self.browser._changed:
            return [
                e["params"] for e in self.browser.events if e.get("sessionId") == self.session and e["method"] == method
            ]

    def goto(self, url: str, ready: str = "document.readyState === 'complete'", timeout: float = 60) -> float:
        """Open `url` and wait until `ready` is true in it; the seconds that took."""
        started = time.perf_counter()
        self.send("Page.navigate", {"url": url})
        self.wait_for(ready, timeout)
        return time.perf_counter() - started

    def evaluate(self, expression: str, timeout: float = 60) -> Any:
        """The JSON value of `expression` in the page; BrowserError with the page's message when it throws."""
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, timeout
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(
                f"{expression[:80]}: {details.get('exception', {}).get('description') or details['text']}"
            )
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(BrowserError):
                if self.evaluate(f"Boolean({expression})", timeout=max(1.0, deadline - time.monotonic())):
                    return
            if time.monotonic() > deadline:
                raise BrowserError(f"{expression}: not true within {timeout} s")
            time.sleep(0.05)

    def key(self, key: str) -> None:
        """Press and release one key (ArrowLeft, Home, ...) where the focus is."""
        code = {
            "key": key,
            "code": key,
            "windowsVirtualKeyCode": KEY_CODES[key],
            "nativeVirtualKeyCode": KEY_CODES[key],
        }
        self.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", **code})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", **code})

    def drag(self, points: list[tuple[float, float]], touch: bool = False) -> None:
        """A stroke through `points` (CSS pixels of the viewport): the mouse with its button down, or a finger."""
        if touch:
            for kind, point in (("touchStart", points[0]), *(("touchMove", p) for p in points[1:])):
                self.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": point[0], "y": point[1]}]})
            self.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
            return
        (x, y), button = points[0], {"button": "left", "clickCount": 1}
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        self.send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": x, "y": y, "buttons": 1, **button})
        for x, y in points[1:]:
            self.send(
                "Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "buttons": 1, "button": "left"}
            )
        self.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x, "y": y, "buttons": 0, **button})

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error-level log entries, in the order they came."""
        found = [
            " ".join(str(arg.get("value", arg.get("description", ""))) for arg in event["args"])
            for event in self.events("Runtime.consoleAPICalled")
            if event["type"] in ("error", "assert")
        ]
        found += [event["exceptionDetails"].get("text", "") for event in self.events("Runtime.exceptionThrown")]
        found += [
            event["entry"]["text"] for event in self.events("Log.entryAdded") if event["entry"]["level"] == "error"
        ]
        return found

    def requests(self) -> list[str]:
        """The URL of every request the page made (the document itself included)."""
        return [event["request"]["url"] for event in self.events("Network.requestWillBeSent")]

    def screenshot(self, path: Path) -> None:
        import base64

        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.contextmanager
def browser(folder: Path) -> Iterator[Browser]:
    """A Browser with its profile and log under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with Browser(folder / "profile", folder / "chromium.log") as running:
        yield running

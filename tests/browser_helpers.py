"""A headless Chromium driven over the DevTools protocol (a websocket on the loopback address), for the tests of
the HTML page: load a file, collect console errors, exceptions and dialogs, press keys, evaluate JavaScript,
take screenshots. Needs Debian's `chromium` (or CGCALC_CHROMIUM=/path/to/chrome) and websocket-client."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


def chromium_binary() -> str | None:
    named = os.environ.get("CGCALC_CHROMIUM")
    if named:
        return named if shutil.which(named) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with one page, on a temporary profile; close() ends it and removes the profile."""

    def __init__(self, binary: str, width: int = 1280, height: int = 900, timeout: float = 60.0) -> None:
        import websocket  # websocket-client

        self.profile = tempfile.mkdtemp(prefix="cgcalc-chromium-")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",  # the tests may run as root (CI does)
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            port = self._port(timeout)
            page = self._page_target(port, timeout)
            self.ws = websocket.create_connection(page, timeout=timeout, suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self.next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def _port(self, timeout: float) -> int:
        """Chromium writes the port it chose (--remote-debugging-port=0) into the profile."""
        path = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode} before it listened")
            if path.exists():
                lines = path.read_text().split()
                if lines:
                    return int(lines[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not start its DevTools server")

    def _page_target(self, port: int, timeout: float) -> str:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    targets = json.loads(r.read())
            except OSError:
                targets = []
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise TimeoutError("chromium has no page to drive")

    def send(self, method: str, **params) -> dict:
        """Call a DevTools method and wait for its reply; events meanwhile are kept in self.events."""
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)
                if message["method"] == "Page.javascriptDialogOpening":  # an alert(): answer it, so nothing hangs
                    self.ws.send(
                        json.dumps({"id": 0, "method": "Page.handleJavaScriptDialog", "params": {"accept": True}})
                    )

    def wait_for(self, event: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while time.monotonic() < deadline:
            for e in self.events[seen:]:
                if e["method"] == event:
                    return e
            seen = len(self.events)
            self.send("Runtime.evaluate", expression="1")  # reads the events that came in meanwhile
            time.sleep(0.05)
        raise TimeoutError(f"no {event} in {timeout} s")

    def open(self, path: Path) -> None:
        """Load a local file and wait until it has loaded; the events (console, errors) start afresh."""
        self.events.clear()
        self.send("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        self.eval("new Promise(r => requestAnimationFrame(() => r(1)))")

    def eval(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited); a JS exception raises."""
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def key(self, key: str) -> None:
        """Press and release a key, as a user's keyboard would (keydown reaches the page's listeners)."""
        codes = {
            "ArrowRight": ("ArrowRight", 39),
            "ArrowLeft": ("ArrowLeft", 37),
            "Home": ("Home", 36),
            "End": ("End", 35),
            "Escape": ("Escape", 27),
        }
        code, vk = codes[key] if key in codes else (f"Key{key.upper()}", ord(key.upper()))
        text = key if len(key) == 1 else ""
        base = {"key": key, "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}
        self.send("Input.dispatchKeyEvent", type="keyDown" if text else "rawKeyDown", text=text, **base)
        self.send("Input.dispatchKeyEvent", type="keyUp", **base)

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element."""
        box = self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center', inline: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            extra = {"button": "left", "clickCount": 1} if kind != "mouseMoved" else {}
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], **extra)

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, failed loads and dialogs since the page was opened."""
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}")
            elif m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('exception', {}).get('description')}")
            elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry']['text']}")
            elif m == "Page.javascriptDialogOpening":
                out.append(f"dialog: {p.get('message')}")
        return out

    def screenshot(self, path: Path, full: bool = True) -> None:
        params = {"format": "png", "captureBeyondViewport": full}
        if full:
            size = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", **params)["data"]))

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                ws.close()
            except Exception:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

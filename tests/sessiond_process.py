"""A private sessiond process for the conformance suites (stdlib only, any venv).

Each suite's conftest builds the config text (credentials, its service's sections) and uses
``SessiondProcess`` to run the real binary on OS-chosen ports in a temporary folder:

    sd = SessiondProcess("dcs", lambda sd: my_config_toml(sd)).start()
    sd.api_url            # "http://127.0.0.1:PORT"
    sd.stop()

Environment: SESSIOND_BIN (default target/debug/sessiond), CONFORMANCE_KEEP=1 keeps the
temporary folder.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[1]

RUNNING: list["SessiondProcess"] = []


class LaunchError(RuntimeError):
    pass


def required_executable(env: str, default: Path) -> Path:
    p = Path(os.environ.get(env) or default)
    if not (p.is_file() and os.access(p, os.X_OK)):
        raise LaunchError(
            f"{env}: {p} is not an executable; build it with `cargo build -p sessiond "
            f"-p example-game-server` (or set {env})"
        )
    return p.resolve()


def sessiond_bin() -> Path:
    return required_executable("SESSIOND_BIN", REPO_ROOT / "target/debug/sessiond")


def no_proxy_env(env: dict) -> dict:
    for k in ("NO_PROXY", "no_proxy"):
        cur = env.get(k, "")
        env[k] = "127.0.0.1,localhost,::1" + ("," + cur if cur else "")
    return env


def wait_until(fn: Callable[[], object], timeout: float, desc: str, interval: float = 0.1):
    """Call fn until it returns a truthy value; return that value. AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {desc}; last value: {last!r}")
        time.sleep(interval)


@atexit.register
def _stop_leftovers():  # e.g. after an interrupted run
    for sd in list(RUNNING):
        try:
            sd.stop()
        except Exception:
            pass


class SessiondProcess:
    """The real binary with a config built by `config_toml(self)`, in a temporary folder."""

    def __init__(self, name: str, config_toml: Callable[["SessiondProcess"], str]):
        self.name = name
        self.tmp = Path(tempfile.mkdtemp(prefix=f"sessiond-conf-{name}-"))
        self.data_dir = self.tmp / "data"
        self.data_dir.mkdir(parents=True)
        self._config_toml = config_toml
        self.config = self.tmp / "sessiond.toml"
        self.log_path = self.tmp / "sessiond.log"
        self.proc: subprocess.Popen | None = None
        self.api_host: str | None = None
        self.api_port: int | None = None
        self.agent_addr: str | None = None
        self._lines: list[str] = []
        self._cv = threading.Condition()
        self.keep = False  # set when a test fails: keep tmp for diagnosis

    @property
    def endpoint(self) -> str:
        return f"{self.api_host}:{self.api_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.endpoint}"

    def start(self, timeout: float = 20.0) -> "SessiondProcess":
        self.config.write_text(self._config_toml(self))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_") or k == "SESSIOND_BIN"}
        env.setdefault("RUST_BACKTRACE", "1")
        self._log = open(self.log_path, "w", buffering=1)
        self.proc = subprocess.Popen(
            [str(sessiond_bin()), "serve", "--config", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=no_proxy_env(env),
            cwd=self.tmp,
            start_new_session=True,
        )
        RUNNING.append(self)
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        with self._cv:
            while "sessiond: ready" not in self._lines:
                if self.proc.poll() is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.2))
        if "sessiond: ready" not in self._lines:
            rc = self.proc.poll()
            tail = self.log_tail()
            self.stop()
            raise LaunchError(
                f"sessiond did not print 'sessiond: ready' within {timeout:.0f}s "
                f"(exit code {rc}); stdout: {self._lines!r}\nlog tail:\n{tail}"
            )
        for line in self._lines:
            m = re.fullmatch(r"sessiond: api listening on http://([0-9.]+):(\d+)", line)
            if m:
                self.api_host, self.api_port = m.group(1), int(m.group(2))
            m = re.fullmatch(r"sessiond: agent listening on ([0-9.]+:\d+)", line)
            if m:
                self.agent_addr = m.group(1)
        if not self.api_port:
            self.stop()
            raise LaunchError(f"sessiond stdout lacks the listening lines: {self._lines!r}")
        return self

    def _pump(self):
        assert self.proc and self.proc.stdout
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            try:
                self._log.write(f"[stdout] {line}\n")
            except ValueError:  # log closed at teardown
                pass
            with self._cv:
                self._lines.append(line)
                self._cv.notify_all()

    def terminate(self):
        """SIGTERM (graceful stop), SIGKILL after 15 s."""
        if self in RUNNING:
            RUNNING.remove(self)
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.kill(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def cleanup(self):
        try:
            self._log.close()
        except Exception:
            pass
        if os.environ.get("CONFORMANCE_KEEP") == "1" or self.keep:
            print(f"\nconformance: kept {self.tmp} (config, data dir, sessiond.log)")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def stop(self):
        self.terminate()
        self.cleanup()

    def log_tail(self, n: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

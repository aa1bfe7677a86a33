"""`supporthub dev` as a subprocess for tests: started in a directory of its own, its
output in a file, and everything it leaves behind (even after a kill -9) found through
/proc and ended by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT


def clean_env(**extra: str) -> dict:
    """The environment without any HUB_ setting, importing this checkout from anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], cwd=cwd,
                          env=env or clean_env(), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


class DevProcess:
    def __init__(self, cwd: Path, env: dict, log: Path, *args: str):
        self.log = log
        self._out = open(log, "a")  # noqa: SIM115 - closed in reap()
        self.proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "dev", *args], cwd=cwd,
                                     env=env, stdout=self._out, stderr=subprocess.STDOUT)  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, url: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"dev never got ready:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def reap(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


def processes_of(data_dir: Path) -> list[int]:
    """Processes that run in `data_dir` or name it: embedded servers and their workers."""
    found = []
    root = str(Path(data_dir).resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if root in cmdline or cwd == root or cwd.startswith(root + "/"):
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def server_pids(data_dir: Path) -> tuple[int | None, int | None]:
    """(postmaster, redis-server) pids their pid files name, when those run."""

    def read(path: Path, first_line: bool) -> int | None:
        try:
            text = path.read_text()
        except OSError:
            return None
        pid = int(text.split("\n", 1)[0] if first_line else text.strip())
        return pid if alive(pid) else None

    return (read(data_dir / "postgres" / "pgdata" / "postmaster.pid", True),
            read(data_dir / "redis" / "redis.pid", False))  # fmt: skip


def end_everything_of(data_dir: Path) -> None:
    """Test cleanup: SIGKILL what still runs in `data_dir`, by pid."""
    for pid in processes_of(data_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while any(alive(p) for p in processes_of(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)

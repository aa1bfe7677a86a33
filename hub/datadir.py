"""The data directory (HUB_DATA_DIR): where the embedded PostgreSQL and Redis and the
`dev` secret live, which one a command uses, and which process owns its servers.

Which one: HUB_DATA_DIR when set, else the nearest `.supporthub` from the current
directory upward (as git finds `.git`), else `./.supporthub`. Only `dev`, `serve` and
`payments` create it; a one-shot command (`token`, `broadcast`, `agent add`, ...) refuses
to work against a new, empty one unless it is given `--init`.

Who owns the servers: the process holding an exclusive lock (flock) on `instance.lock`,
described in `instance.json`. The kernel drops the lock when that process dies, even by
`kill -9`, so servers found running while nobody holds it are stale: the next owner
stops them (or, asked to, adopts them) and a clean stop stops every server its run
started or adopted. A one-shot command run while `dev` owns the directory uses that
`dev`'s servers and never stops them.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from supporthub_core.exits import DATA_DIR, CommandError
from supporthub_core.settings import Settings

NAME = ".supporthub"
MARK = "SUPPORTHUB"
LOCK = "instance.lock"
INFO = "instance.json"
#: what a data directory of ours may hold; a non-empty directory with none of it is foreign
KNOWN = frozenset({MARK, LOCK, INFO, "secret", "vapid_private_key", "postgres", "redis"})
#: commands that own the servers while they run (the others borrow them)
SERVING = frozenset({"dev", "serve", "payments"})


def locate(settings: Settings, cwd: Path | None = None) -> tuple[Path, bool]:
    """(the data directory, whether HUB_DATA_DIR named it); it may not exist yet."""
    if "data_dir" in settings.model_fields_set:
        return Path(settings.data_dir).expanduser().resolve(), True
    here = (cwd or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / NAME).is_dir():
            return directory / NAME, False
    return here / NAME, False


def open_data_dir(settings: Settings, *, create: bool, cwd: Path | None = None) -> Path:
    """The data directory to use, made if `create`; a CommandError (exit 5) when there is
    none and `create` is false, or when it is not ours."""
    path, explicit = locate(settings, cwd)
    where = f"HUB_DATA_DIR={path}" if explicit else str(path)
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise CommandError(
                f"{where} is not a directory: point HUB_DATA_DIR elsewhere", DATA_DIR
            )
        names = {p.name for p in path.iterdir()}
        if names and not names & KNOWN:
            raise CommandError(
                f"{where} is not a supporthub data directory (it holds other files):"
                " set HUB_DATA_DIR to the one `supporthub dev` uses, or to a new directory",
                DATA_DIR,
            )
        return path
    if not create:
        found = (
            f"{where} does not exist"
            if explicit
            else f"no {NAME} directory in {(cwd or Path.cwd()).resolve()} or above,"
            " and HUB_DATA_DIR is unset"
        )
        raise CommandError(
            f"{found}: run this where `supporthub dev` runs, set HUB_DATA_DIR to its data"
            " directory (or HUB_SECRET, HUB_DATABASE_URL and HUB_REDIS_URL to reach a"
            " deployment), or pass --init to create a new one",
            DATA_DIR,
        )
    path.mkdir(parents=True, exist_ok=True)
    (path / MARK).write_text(
        "A supporthub data directory: embedded PostgreSQL and Redis, the dev secret.\n"
        "instance.json names the process that runs its servers.\n"
    )
    return path


@dataclass(frozen=True)
class Owner:
    pid: int
    command: str
    url: str | None = None
    started_at: float = 0.0

    def describe(self) -> str:
        at = f" at {self.url}" if self.url else ""
        return f"`supporthub {self.command}` (pid {self.pid}{at})"


def read_owner(path: Path) -> Owner | None:
    """What `instance.json` says (the last owner: check `Instance.held_by_other`)."""
    try:
        data = json.loads((path / INFO).read_text())
        return Owner(int(data["pid"]), str(data["command"]), data.get("url"),
                     float(data.get("started_at", 0)))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Instance:
    """This process's claim on a data directory (see the module's doc)."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def try_claim(self) -> bool:
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def claim_within(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.try_claim():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    @property
    def claimed(self) -> bool:
        return self._fd is not None

    def announce(self, command: str, url: str | None = None) -> None:
        info = {"pid": os.getpid(), "command": command, "url": url, "started_at": time.time()}
        tmp = self.path / (INFO + ".tmp")
        tmp.write_text(json.dumps(info) + "\n")
        tmp.replace(self.path / INFO)

    def release(self) -> None:
        if self._fd is None:
            return
        owner = read_owner(self.path)
        if owner is not None and owner.pid == os.getpid():
            (self.path / INFO).unlink(missing_ok=True)
        os.close(self._fd)  # drops the lock
        self._fd = None


def running_owner(settings: Settings, cwd: Path | None = None) -> Owner | None:
    """The live owner of the data directory a command would use, if any: for `doctor`
    and `simulate` to find the running `dev`'s address."""
    path, _ = locate(settings, cwd)
    if not path.is_dir() or not (path / LOCK).exists():
        return None
    probe = Instance(path)
    try:
        if probe.try_claim():
            probe.release()
            return None
    except OSError:
        return None
    return read_owner(path)

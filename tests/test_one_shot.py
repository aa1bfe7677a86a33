"""One-shot commands find the running `dev`'s data directory (HUB_DATA_DIR, or the
nearest `.supporthub` upward) and refuse to make a new one unless given --init;
`simulate` talks to the server over HTTP only."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from hub import exits
from tests.client import HubClient
from tests.conftest import free_port
from tests.devproc import DevProcess, clean_env, cli, end_everything_of, server_pids


@dataclass
class RunningDev:
    project: Path  # `dev` was started here: its data directory is project/.supporthub
    url: str
    dev: DevProcess

    @property
    def data_dir(self) -> Path:
        return self.project / ".supporthub"

    @property
    def secret(self) -> str:
        return (self.data_dir / "secret").read_text().strip()


@pytest.fixture(scope="module")
def running_dev():
    project = Path(tempfile.mkdtemp(prefix="shp-", dir="/tmp"))
    (project / "sub" / "deeper").mkdir(parents=True)
    port = free_port()
    dev = DevProcess(project, clean_env(HUB_PORT=str(port)), project.with_suffix(".log"))
    try:
        dev.wait_ready(f"http://127.0.0.1:{port}")
        yield RunningDev(project, f"http://127.0.0.1:{port}", dev)
    finally:
        dev.reap()
        end_everything_of(project)
        dev.log.unlink(missing_ok=True)
        shutil.rmtree(project, ignore_errors=True)


@pytest.fixture
def elsewhere():
    """A directory with no data directory in it or above."""
    path = Path(tempfile.mkdtemp(prefix="she-", dir="/tmp"))
    assert not any((d / ".supporthub").exists() for d in (path, *path.parents))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(180)
def test_one_shot_commands_refuse_to_make_a_data_directory_unless_asked(elsewhere):
    for args in (
        ["token", "--sub", "u-1", "--role", "user"],
        ["broadcast", "--title", "t", "--body", "b"],
        ["agent", "add", "--username", "a", "--password", "p", "--name", "A"],
        ["account", "add", "--user", "u-1", "--name", "U", "--balance", "1.00"],
        ["migrate"],
    ):
        out = cli(*args, cwd=elsewhere)
        assert out.returncode == exits.DATA_DIR, (args, out.stderr)
        assert "no .supporthub directory in" in out.stderr and "--init" in out.stderr
        assert "Traceback" not in out.stderr
        assert list(elsewhere.iterdir()) == [], args  # nothing made: no secret, no database
    out = cli("token", "--sub", "u-1", "--role", "user", "--init", cwd=elsewhere)
    assert out.returncode == 0, out.stderr
    secret = (elsewhere / ".supporthub" / "secret").read_text().strip()
    assert jwt.decode(out.stdout.strip(), secret, algorithms=["HS256"])["sub"] == "u-1"

    foreign = elsewhere / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("not ours")
    out = cli("token", "--sub", "u-1", "--role", "user", cwd=elsewhere,
              env=clean_env(HUB_DATA_DIR=str(foreign)))  # fmt: skip
    assert out.returncode == exits.DATA_DIR
    assert f"HUB_DATA_DIR={foreign} is not a supporthub data directory" in out.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["todo.txt"]


@pytest.mark.timeout(180)
async def test_one_shot_commands_work_against_the_running_dev(running_dev):
    below = running_dev.project / "sub" / "deeper"
    servers = server_pids(running_dev.data_dir)

    out = await asyncio.to_thread(cli, "token", "--sub", "u-ops", "--role", "user", cwd=below)
    assert out.returncode == 0, out.stderr
    claims = jwt.decode(out.stdout.strip(), running_dev.secret, algorithms=["HS256"])
    assert claims["sub"] == "u-ops"

    user = await HubClient.connect(
        running_dev.url.replace("http", "ws") + "/ws", out.stdout.strip()
    )
    try:
        out = await asyncio.to_thread(cli, "broadcast", "--title", "运维", "--body", "来自子目录",
                                      cwd=below)  # fmt: skip
        assert out.returncode == 0, out.stderr
        notice = await user.expect("notification", kind="system.notice")
        assert (notice["title"], notice["body"]) == ("运维", "来自子目录")
    finally:
        await user.close()

    out = await asyncio.to_thread(cli, "agent", "add", "--username", "newbie", "--password",
                                  "pw-newbie", "--name", "Newbie", cwd=below)  # fmt: skip
    assert out.returncode == 0, out.stderr
    async with httpx.AsyncClient(base_url=running_dev.url) as http:
        r = await http.post(
            "/api/agents/login", json={"username": "newbie", "password": "pw-newbie"}
        )
    assert r.status_code == 200
    # the running dev's servers were used, and are still the same ones
    assert server_pids(running_dev.data_dir) == servers
    assert not (below / ".supporthub").exists()

    # its log: the requests, and the socket's open and close (no bare "connection open")
    log = running_dev.dev.output()
    assert '"POST /api/agents/login HTTP/1.1" 200' in log
    assert "ws open: user u-ops from 127.0.0.1" in log
    assert re.search(
        r"ws closed: user u-ops from 127.0.0.1 after [\d.]+s, code 1000 by client", log
    )
    assert "connection open" not in log

    # a second dev on the same data directory is refused, whatever its port
    out = await asyncio.to_thread(cli, "dev", "--port", str(free_port()), cwd=below)
    assert out.returncode == exits.DATA_DIR
    assert (
        f"in use by `supporthub dev` (pid {running_dev.dev.pid} at {running_dev.url})" in out.stderr
    )


@pytest.mark.timeout(180)
async def test_simulate_talks_http_only(running_dev, elsewhere):
    servers = server_pids(running_dev.data_dir)
    out = await asyncio.to_thread(cli, "simulate", "--url", running_dev.url, "--users", "5",
                                  "--seconds", "2", "--rate", "5", cwd=elsewhere)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "payments in" in out.stdout and "frozen accounts" in out.stdout
    assert list(elsewhere.iterdir()) == []  # no data directory, no servers of its own
    assert server_pids(running_dev.data_dir) == servers

    # without --url, from inside the project: the address of the dev running there
    out = await asyncio.to_thread(cli, "simulate", "--users", "3", "--seconds", "1",
                                  cwd=running_dev.project / "sub")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"simulating against {running_dev.url}" in out.stdout

    out = await asyncio.to_thread(cli, "simulate", "--url", f"http://127.0.0.1:{free_port()}",
                                  "--seconds", "1", cwd=elsewhere)  # fmt: skip
    assert out.returncode == exits.UNREACHABLE and "nothing answers at" in out.stderr

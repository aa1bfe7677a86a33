"""Against a running `dev`: one-shot commands find its data directory (HUB_DATA_DIR, or
the nearest `.supporthub` upward) and refuse to make a new one unless given --init;
`simulate` talks to it over HTTP only; `doctor` proves the whole path, and says what is
broken when it is (the last test here stops the dev's Redis)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from supporthub_core import exits
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

    # its log: the requests, and the socket's open and close (no bare "connection open");
    # the access line is written after the answer, so it is waited for
    for _ in range(100):
        log = running_dev.dev.output()
        if '"POST /api/agents/login HTTP/1.1" 200' in log:
            break
        await asyncio.sleep(0.1)
    assert '"POST /api/agents/login HTTP/1.1" 200' in log
    assert "ws open: user u-ops from 127.0.0.1" in log
    assert re.search(
        r"ws closed: user u-ops from 127.0.0.1 after [\d.]+s, code 1000 by client", log
    )
    assert "connection open" not in log
    assert "GET /api/events?" not in log  # the outbox poll of the hub itself is left out

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


@pytest.mark.timeout(180)
async def test_doctor_passes_on_a_healthy_dev(running_dev, elsewhere):
    out = await asyncio.to_thread(cli, "doctor", cwd=running_dev.project / "sub")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"supporthub doctor: {running_dev.url}" in out.stdout
    for line in ("answers: node", "ready: postgres, redis, bus answer", "socket: hello/welcome in",
                 "routing: ", "clock: between", "probe notification: payments -> outbox -> Redis"
                 " -> hub -> socket in"):  # fmt: skip
        assert line in out.stdout, line
    assert "FAIL" not in out.stdout and "checks passed" in out.stdout

    # from anywhere, with the deployment's secret, and every node named (here one, twice)
    env = clean_env(HUB_SECRET=running_dev.secret)
    out = await asyncio.to_thread(cli, "doctor", "--url", running_dev.url, "--url",
                                  running_dev.url + "/", cwd=elsewhere, env=env)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "(2 nodes)" in out.stdout and "clocks between nodes" in out.stdout

    wrong = clean_env(HUB_SECRET="not-the-deployments-secret")
    out = await asyncio.to_thread(cli, "doctor", "--url", running_dev.url, "--timeout", "3",
                                  cwd=elsewhere, env=wrong)  # fmt: skip
    assert out.returncode == exits.FAILED
    assert "FAIL" in out.stdout and "HUB_SECRET differs from the deployment's" in out.stdout

    out = await asyncio.to_thread(cli, "doctor", "--url", running_dev.url, cwd=elsewhere)
    assert out.returncode == exits.USAGE and "set HUB_SECRET" in out.stderr
    assert list(elsewhere.iterdir()) == []

    out = await asyncio.to_thread(cli, "doctor", "--url", f"http://127.0.0.1:{free_port()}",
                                  cwd=elsewhere, env=env)  # fmt: skip
    assert out.returncode == exits.UNREACHABLE and "nothing answered" in out.stdout


@pytest.mark.timeout(180)
async def test_doctor_says_what_is_broken_when_redis_is_down(running_dev):
    """Last in this module: the dev stays without Redis until it stops."""
    _, redis_pid = server_pids(running_dev.data_dir)
    assert redis_pid
    os.kill(redis_pid, signal.SIGTERM)
    for _ in range(100):
        if server_pids(running_dev.data_dir)[1] is None:
            break
        await asyncio.sleep(0.1)
    out = await asyncio.to_thread(cli, "doctor", "--timeout", "4", cwd=running_dev.project)
    assert out.returncode == exits.FAILED, out.stdout + out.stderr
    assert "FAIL" in out.stdout and "checks failed" in out.stdout
    assert "ready: Redis (HUB_REDIS_URL) does not answer" in out.stdout
    # the probe may still arrive without Redis: the hub reads the payments outbox over
    # HTTP, and the node that stores a notification delivers it to its own sockets
    assert "probe notification" in out.stdout

"""The `supporthub` command as operators use it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import jwt
import pytest

from tests.client import HubClient
from tests.conftest import ROOT, SECRET, free_port, reap, run_cli
from tests.devproc import end_everything_of, processes_of


def test_token_command_prints_a_verifiable_token():
    out = run_cli("token", "--sub", "u-7", "--role", "agent", "--name", "Ann", "--ttl", "60",
                  env={"HUB_SECRET": SECRET})  # fmt: skip
    assert out.returncode == 0, out.stderr
    claims = jwt.decode(out.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "u-7" and claims["role"] == "agent" and claims["name"] == "Ann"
    assert claims["exp"] - time.time() <= 61
    bad = run_cli("token", "--sub", "x", "--role", "root", env={"HUB_SECRET": SECRET})
    assert bad.returncode != 0


def test_migrate_is_idempotent_and_agent_add_upserts(services):
    env = {"HUB_DATABASE_URL": services.dsn, "HUB_REDIS_URL": services.redis_url}
    first = run_cli("migrate", env=env)
    assert first.returncode == 0 and "up to date" in first.stdout
    args = ["agent", "add", "--username", "cli-agent", "--password", "pw1", "--name", "CLI",
            "--skills", "security,account", "--capacity", "4"]  # fmt: skip
    out = run_cli(*args, env=env)
    assert out.returncode == 0, out.stderr
    out = run_cli(*args[:-1], "5", "--supervisor", env=env)
    assert out.returncode == 0 and "capacity 5" in out.stdout
    out = run_cli(*args, "--security-backup", env=env)
    assert out.returncode == 0 and "security backup" in out.stdout, out.stderr


def test_serve_refuses_to_start_without_a_secret(services):
    env = {"HUB_DATABASE_URL": services.dsn, "HUB_REDIS_URL": services.redis_url, "HUB_SECRET": ""}
    out = run_cli("serve", "--port", str(free_port()), env=env, timeout=30)
    assert out.returncode != 0 and "HUB_SECRET" in (out.stderr + out.stdout)


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.get(url)


async def _wait(url: str, proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if (await _get(url)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.3)
    raise AssertionError(f"{url} never answered")


@pytest.mark.timeout(180)
async def test_dev_runs_on_embedded_servers_and_keeps_data_across_restarts():
    data_dir = tempfile.mkdtemp(prefix="shdev-", dir="/tmp")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({"HUB_DATA_DIR": data_dir, "HUB_PORT": str(port)})

    def start():
        return subprocess.Popen([sys.executable, "-m", "hub.cli", "dev"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip

    base = f"http://127.0.0.1:{port}"
    proc = start()
    try:
        await _wait(base + "/readyz", proc)
        for path in ("/console/", "/widget/", "/healthz", "/metrics", "/api/help/articles"):
            assert (await _get(base + path)).status_code == 200, path
        async with httpx.AsyncClient(base_url=base) as http:
            r = await http.post(
                "/api/agents/login", json={"username": "alice", "password": "alice123"}
            )
            assert r.status_code == 200
            token = (await http.get("/api/dev/token", params={"user": "u-keep"})).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
        user = await HubClient.connect(f"ws://127.0.0.1:{port}/ws", token)
        opened = await user.request(
            {"type": "chat.open", "topic": "account", "handoff": "agent", "text": "keep me"}
        )
        await user.close()
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0]
        assert "/console/" in out and "alice" in out
        proc = start()
        await _wait(base + "/readyz", proc)
        async with httpx.AsyncClient(base_url=base) as http:
            r = await http.get("/api/conversations", headers=headers)  # same secret, same data
            assert [c["conversation_id"] for c in r.json()["conversations"]] == [
                opened["conversation_id"]
            ]
            r = await http.post(
                "/api/agents/login", json={"username": "alice", "password": "alice123"}
            )
            assert r.status_code == 200
        # SIGTERM (a process manager's stop) also stops the embedded servers it started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == -signal.SIGTERM
        assert processes_of(Path(data_dir)) == [], "embedded servers outlived supporthub dev"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        reap(proc)
        end_everything_of(Path(data_dir))  # by pid, only what runs in this data directory
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.usefixtures("clean")
async def test_broadcast_command_reaches_connected_users(hub, services):
    user = await hub.client("u-cli-bcast")
    env = {
        "HUB_DATABASE_URL": services.dsn,
        "HUB_REDIS_URL": services.redis_url,
        "HUB_SECRET": SECRET,
    }
    out = await asyncio.to_thread(
        run_cli, "broadcast", "--title", "系统维护", "--body", "今晚 2:00-3:00", env=env
    )
    assert out.returncode == 0, out.stderr
    n = await user.expect("notification", kind="system.notice")
    assert (n["title"], n["body"]) == ("系统维护", "今晚 2:00-3:00")
    await user.close()


@pytest.mark.usefixtures("clean")
async def test_maintenance_command_fails_new_payments_and_tells_users(hub, services):
    from payments.seed import add_account

    await add_account(services.dsn, "u-maint", "M", "50.00")
    await add_account(services.dsn, "u-maint-2", "M2", "0.00")
    user = await hub.client("u-maint")
    env = {
        "HUB_DATABASE_URL": services.dsn,
        "HUB_REDIS_URL": services.redis_url,
        "HUB_SECRET": SECRET,
    }
    try:
        out = await asyncio.to_thread(run_cli, "maintenance", "on", "--message", "升级中", env=env)
        assert out.returncode == 0, out.stderr
        n = await user.expect("notification", kind="system.notice")
        assert n["body"] == "升级中" and n["data"] == {"maintenance": True}
        async with hub.http(hub.token("u-maint")) as http:
            r = await http.post("/api/payments", json={"to_account": "u-maint-2", "amount": "1.00",
                                                       "speed": "instant", "idempotency_key": "m1"})  # fmt: skip
        assert r.status_code == 202 and r.json()["reason"] == "maintenance"
    finally:
        out = await asyncio.to_thread(run_cli, "maintenance", "off", env=env)
        assert out.returncode == 0
    await user.close()


def test_account_add_creates_a_payment_account(services):
    env = {
        "HUB_DATABASE_URL": services.dsn,
        "HUB_REDIS_URL": services.redis_url,
        "HUB_SECRET": SECRET,
    }
    out = run_cli(
        "account",
        "add",
        "--user",
        "u-cli-acct",
        "--name",
        "CLI 用户",
        "--balance",
        "123.45",
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "123.45" in out.stdout
    bad = run_cli(
        "account", "add", "--user", "u-cli-bad", "--name", "X", "--balance", "abc", env=env
    )
    assert bad.returncode != 0

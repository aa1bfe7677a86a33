"""`supporthub chat` as a real subprocess against a running hub: lines piped into its stdin
become the user's messages, an agent answers, and the reply, the agent's typing and a
notification appear on its stdout."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from supporthub_client import client_msg_id
from tests.clientlibs import online_agent, uid
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("clean")
LINE_WAIT_S = 30


async def read_until(proc: asyncio.subprocess.Process, wanted: str, seen: list[str]) -> str:
    """Lines of stdout until one containing `wanted` (all kept in `seen`)."""
    assert proc.stdout is not None
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), LINE_WAIT_S)
        assert raw, f"chat ended before {wanted!r}; it printed {seen}"
        line = raw.decode().rstrip("\n")
        seen.append(line)
        if wanted in line:
            return line


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_chat_command_sends_lines_and_shows_replies_live(
    hub: Any, db: Any, codec: str
) -> None:
    agent = await online_agent(hub, db, "alice", ["payment"])
    user_id = uid()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.cli", "chat", "--url", hub.url, "--user", user_id,
        "--name", "Lin", "--topic", "payment", "--handoff", "agent", "--codec", codec,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stderr is not None
    seen: list[str] = []
    try:
        proc.stdin.write(b"my transfer is stuck\n")
        await proc.stdin.drain()
        assigned = await agent.expect("chat.assigned", timeout=LINE_WAIT_S)
        cid = assigned["conversation_id"]
        assert assigned["user"]["id"] == user_id
        assert [m["text"] for m in assigned["history"]] == ["my transfer is stuck"]
        await read_until(proc, "Alice joined", seen)

        await agent.send({"type": "typing", "conversation_id": cid, "state": True})
        await read_until(proc, "Alice is typing", seen)
        await agent.request({"type": "chat.send", "conversation_id": cid,
                             "client_msg_id": client_msg_id(), "text": "我来看看 / on it"})  # fmt: skip
        assert await read_until(proc, "on it", seen) == "Alice: 我来看看 / on it"

        async with hub.http(hub.token("sup", "supervisor")) as http:
            r = await http.post("/api/broadcasts", json={"title": "Maintenance", "body": "at 2am"})
            assert r.status_code == 202
        assert await read_until(proc, "Maintenance", seen) == "[notification] Maintenance: at 2am"

        for text in ("thanks", "it arrived"):
            proc.stdin.write(f"{text}\n".encode())
        await proc.stdin.drain()
        from_user = lambda f: f.get("type") == "message" and f["sender"]["role"] == "user"  # noqa: E731
        got = [await agent.expect(from_user, timeout=LINE_WAIT_S) for _ in range(2)]
        assert [m["text"] for m in got] == ["thanks", "it arrived"]
        assert all(m["sender"]["id"] == user_id for m in got)

        proc.stdin.close()  # the end of the input: it leaves once everything is acked
        assert await asyncio.wait_for(proc.wait(), LINE_WAIT_S) == 0
        rest = (await proc.stdout.read()).decode() if proc.stdout else ""
        # the lines typed here are not echoed back as if someone else had said them
        assert "thanks" not in rest and not any("thanks" in line for line in seen)
        await agent.quiet(from_user, 0.2)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await agent.close()


async def test_chat_command_without_a_hub_says_so(tmp_path: Path) -> None:
    from tests.clientlibs import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.cli", "chat", "--url", f"http://127.0.0.1:{free_port()}",
        "--token", "not-a-token", "--connect-timeout", "2", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(b""), 60)
    assert proc.returncode == 4, err
    assert b"could not reach the hub" in err


async def test_chat_command_with_a_refused_token_says_so(hub: Any, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.cli", "chat", "--url", hub.url, "--token", "not-a-token",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(b""), 60)
    assert proc.returncode == 1, err
    assert b"the hub refused the token" in err

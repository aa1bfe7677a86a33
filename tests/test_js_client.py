"""The JavaScript client library (clients/js) in Node against a real hub: its own unit tests,
then test/live.test.js, which cuts connections mid-stream, repeats frames, reloads with an
unsent outbox and has this suite restart the server under it (over a line protocol on its
stdin and stdout). The Node side uses the `ws` package, installed by `npm ci` from the
committed lock file into a temporary copy (the work tree stays clean)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hub.store import agents
from tests.clientlibs import free_port, start_hub_on
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("clean")
PACKAGE = ROOT / "clients" / "js"
NODE, NPM = shutil.which("node"), shutil.which("npm")
needs_node = pytest.mark.skipif(
    not (NODE and NPM), reason="Node.js and npm are needed to test the JavaScript client"
)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package with its dev dependencies installed."""
    copy = tmp_path_factory.mktemp("js-client") / "js"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("node_modules"))
    result = subprocess.run(
        [str(NPM), "ci", "--no-audit", "--no-fund"], cwd=copy, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return Path(copy)


@needs_node
def test_unit_tests_pass(package: Path) -> None:
    result = subprocess.run(
        [str(NODE), "--test", "test/"], cwd=package, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


@needs_node
@pytest.mark.timeout(300)
async def test_live_against_a_real_hub(package: Path, services: Any, db: Any) -> None:
    port = free_port()
    hub = await start_hub_on(services, port)
    await agents.upsert(db, username="alice", password="pw-alice", name="Alice",
                        skills=["payment"], capacity=50, supervisor=False)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        SUPPORTHUB_TEST_URL=hub.url,
        SUPPORTHUB_TEST_AGENT_TOKEN=hub.token("alice", "agent", name="Alice"),
        SUPPORTHUB_TEST_SUPERVISOR_TOKEN=hub.token("sup", "supervisor"),
        SUPPORTHUB_TEST_CONTROL="1",
    )
    proc = await asyncio.create_subprocess_exec(
        str(NODE), "test/live.test.js", cwd=package, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    output: list[str] = []
    try:
        while raw := await asyncio.wait_for(proc.stdout.readline(), 240):
            line = raw.decode().rstrip()
            output.append(line)
            print(line, flush=True)  # shown when the test fails
            if line == "@@supporthub stop":
                await hub.stop()
            elif line == "@@supporthub start":
                hub = await start_hub_on(services, port)
            else:
                continue
            proc.stdin.write(f"@@done {line.split()[-1]}\n".encode())
            await proc.stdin.drain()
        code = await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await hub.stop()
    report = "\n".join(output)
    assert code == 0, report
    assert "# fail 0" in report and "# skipped 0" in report, report

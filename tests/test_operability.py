"""What a newcomer and an operator meet first: help for every option, errors that say
what to do (never a traceback), documented exit codes."""

from __future__ import annotations

import argparse
import os
import re
import socket
import tempfile
from pathlib import Path

from hub.cli import build_parser
from supporthub_core import exits
from tests.conftest import ROOT, SECRET, free_port, run_cli


def _parsers(parser: argparse.ArgumentParser, path: str = "supporthub"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_of_every_command_says_what_it_does():
    undocumented = [
        f"{path} {action.option_strings or action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    assert undocumented == []
    out = run_cli("dev", "--help")
    assert out.returncode == 0
    assert re.search(r"--port PORT\s+port to listen on", out.stdout), out.stdout
    assert "HUB_PORT" in out.stdout and "exit codes" in out.stdout


def test_exit_codes_are_documented():
    ops = (ROOT / "docs" / "operations.md").read_text()
    section = ops.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for name in ("OK", "FAILED", "USAGE", "PORT_IN_USE", "UNREACHABLE", "DATA_DIR"):
        assert f"| {getattr(exits, name)} |" in section, name


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(extra)
    return env


def test_dev_on_a_taken_port_says_so_before_starting_anything():
    data_dir = Path(tempfile.mkdtemp(prefix="shport-", dir="/tmp"))
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        out = run_cli(
            "dev", env=_clean_env(HUB_DATA_DIR=str(data_dir), HUB_PORT=str(port)), timeout=60
        )
    finally:
        holder.close()
    text = out.stdout + out.stderr
    assert out.returncode == exits.PORT_IN_USE, text
    assert f"port {port} is in use: run `supporthub dev --port " in out.stderr
    assert "or set HUB_PORT" in out.stderr
    assert "running" not in out.stdout and "Traceback" not in text
    assert not (data_dir / "postgres").exists()  # nothing was started
    os.rmdir(data_dir)


def test_unreachable_postgres_or_redis_is_one_line_with_the_setting_to_fix(services):
    closed = free_port()
    out = run_cli(
        "migrate", env=_clean_env(HUB_DATABASE_URL=f"postgresql://ops:pw@127.0.0.1:{closed}/x")
    )
    assert out.returncode == exits.UNREACHABLE, out.stderr
    assert "PostgreSQL at postgresql://ops:***@127.0.0.1" in out.stderr
    assert "HUB_DATABASE_URL" in out.stderr and "pw" not in out.stderr
    assert "Traceback" not in out.stderr

    env = _clean_env(HUB_DATABASE_URL=services.dsn, HUB_REDIS_URL=f"redis://127.0.0.1:{closed}/0",
                     HUB_SECRET=SECRET, HUB_PORT=str(free_port()))  # fmt: skip
    for args in (["broadcast", "--title", "t", "--body", "b"], ["serve"]):
        out = run_cli(*args, env=env)
        assert out.returncode == exits.UNREACHABLE, (args, out.stderr)
        assert f"Redis at redis://127.0.0.1:{closed}/0 is unreachable" in out.stderr
        assert "HUB_REDIS_URL" in out.stderr and "Traceback" not in out.stderr

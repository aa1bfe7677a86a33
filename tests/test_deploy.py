"""The deployment examples run what exists: every unit and the container image start a
`supporthub` command the parser accepts, with the settings it needs. (They cannot run
here; systemd-analyze checks the units where it is installed.)"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hub.cli import build_parser
from supporthub_core.settings import Settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
BINARY = "/opt/supporthub/.venv/bin/supporthub"


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path.name}: {line} outside a section"
        current.setdefault(key, []).append(value)
    return sections


def test_systemd_units_run_serve_payments_and_migrate_as_a_oneshot():
    by_command = {}
    for path in UNITS:
        unit = _unit(path)
        service = unit["Service"]
        [exec_start] = service["ExecStart"]
        binary, *argv = shlex.split(exec_start)
        assert binary == BINARY
        args = build_parser().parse_args(argv)
        by_command[args.command] = (path.name, unit)
        assert "multi-user.target" in unit["Install"]["WantedBy"]
        assert service["EnvironmentFile"] == ["/etc/supporthub/supporthub.env"]
    assert set(by_command) == {"serve", "payments", "migrate"}
    migrate_name, migrate = by_command["migrate"]
    assert migrate["Service"]["Type"] == ["oneshot"]
    for command in ("serve", "payments"):
        _, unit = by_command[command]
        assert migrate_name in unit["Unit"]["Requires"] and migrate_name in unit["Unit"]["After"][0]
        env = " ".join(unit["Service"]["Environment"])
        assert "HUB_HOST=0.0.0.0" in env and "HUB_PORT=" in env
        # a configuration error (2), a taken port (3), a data directory problem (5) do
        # not heal by restarting
        assert unit["Service"]["RestartPreventExitStatus"] == ["2 3 5"]


def test_the_environment_file_names_real_settings_and_all_that_serve_needs():
    names = set()
    for line in (DEPLOY / "supporthub.env.example").read_text().splitlines():
        m = re.match(r"#?(HUB_[A-Z_]+)=", line)
        if m:
            names.add(m.group(1))
    known = {f"HUB_{name.upper()}" for name in Settings.model_fields}
    assert names <= known, names - known
    assert {"HUB_DATABASE_URL", "HUB_REDIS_URL", "HUB_SECRET", "HUB_PAYMENTS_URL"} <= names


def test_the_container_image_runs_serve_by_default_and_the_others_on_demand():
    text = (DEPLOY / "Containerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["supporthub"\]$', text, re.M)
    [cmd] = re.findall(r"^CMD (\[.*\])$", text, re.M)
    assert build_parser().parse_args(json.loads(cmd)).command == "serve"
    for command in ("payments", "migrate"):
        assert f"supporthub {command}" in text
        build_parser().parse_args([command])
    for source in re.findall(r"^COPY (\S+) ", text, re.M):
        assert (ROOT / source).exists(), source
    assert "HUB_HOST=0.0.0.0" in text and re.search(r"^USER supporthub$", text, re.M)
    docs = (ROOT / "docs" / "operations.md").read_text()
    assert "deploy/Containerfile" in docs and "deploy/systemd" in docs


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_accepts_the_units():
    supporthub = Path(sys.executable).with_name("supporthub")
    if not supporthub.exists():
        pytest.skip("no supporthub script next to this Python")
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for path in UNITS:
            copy = Path(tmp) / path.name
            copy.write_text(path.read_text().replace(BINARY, str(supporthub)))
            copies.append(str(copy))
        out = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    problems = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert problems == [], problems

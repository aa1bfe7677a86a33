"""mypy over the packages, as configured in pyproject.toml (`[tool.mypy]`): the pure cores
strictly, the shells with `check_untyped_defs`. A type error fails the suite like any
other broken test. The incremental cache (`.mypy_cache`, git-ignored) keeps reruns quick."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(600)
def test_mypy_reports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the configured targets are relative to the project
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, f"mypy found errors:\n{out}{err}"

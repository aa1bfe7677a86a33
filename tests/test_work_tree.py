"""The tests write nothing into the work tree: browser screenshots go to a temporary
directory (the README's pictures come from `python -m bench.screenshots`), and the whole
run is checked at its end by the `work_tree_untouched` fixture (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from tests.browser import screenshots_dir
from tests.conftest import tracked_changes

ROOT = Path(__file__).resolve().parent.parent


def test_browser_screenshots_go_outside_the_work_tree():
    where = screenshots_dir().resolve()
    assert where != ROOT and ROOT not in where.parents, where
    assert (ROOT / "docs").resolve() not in (where, *where.parents)


def test_the_run_is_watched_for_changes_to_tracked_files():
    # a git checkout (CI's and a developer's): the end-of-run check has something to compare
    if (ROOT / ".git").exists():
        assert tracked_changes() is not None

"""Who owns the embedded servers of a data directory: a `dev` killed with -9 leaves them
running; the next one says so and stops them (or adopts them when asked); a clean stop
leaves nothing of that data directory running."""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.devproc import (
    DevProcess,
    alive,
    clean_env,
    end_everything_of,
    processes_of,
    server_pids,
)


@pytest.mark.timeout(300)
def test_a_killed_dev_leaves_servers_that_the_next_one_stops_or_adopts():
    data_dir = Path(tempfile.mkdtemp(prefix="shk-", dir="/tmp"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(HUB_DATA_DIR=str(data_dir), HUB_PORT=str(port))
    devs: list[DevProcess] = []

    def start(*args: str) -> DevProcess:
        dev = DevProcess(data_dir.parent, env, data_dir.with_suffix(f".{len(devs)}.log"), *args)
        devs.append(dev)
        dev.wait_ready(url)
        return dev

    try:
        first = start()
        pg, redis = server_pids(data_dir)
        assert pg and redis
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        assert alive(pg) and alive(redis)  # what kill -9 leaves behind

        adopter = start("--adopt")
        assert server_pids(data_dir) == (pg, redis)
        assert (
            f"adopting the embedded PostgreSQL (pid {pg}) and Redis (pid {redis}) left running"
            f" by `supporthub dev` (pid {first.pid} at {url}), which is gone" in adopter.output()
        )
        assert adopter.stop(signal.SIGKILL) == -signal.SIGKILL

        fresh = start()
        out = fresh.output()
        assert f"PostgreSQL (pid {pg}) and Redis (pid {redis}) were left running" in out
        assert f"`supporthub dev` (pid {adopter.pid} at {url}), which is gone: stopping them" in out
        assert not alive(pg) and not alive(redis)
        new_pg, new_redis = server_pids(data_dir)
        assert new_pg and new_redis and (new_pg, new_redis) != (pg, redis)

        assert fresh.stop(signal.SIGTERM) == -signal.SIGTERM
        assert processes_of(data_dir) == [], "embedded servers outlived supporthub dev"
        assert not (data_dir / "instance.json").exists()
    finally:
        for dev in devs:
            dev.reap()
        end_everything_of(data_dir)
        for dev in devs:
            dev.log.unlink(missing_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)

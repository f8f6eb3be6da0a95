"""A cluster of worker processes on localhost, for the multi-worker tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(n: int) -> list[int]:
    """`n` TCP ports free on localhost right now."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def worker_env(tf_config: dict | None) -> dict:
    """This process's environment with `TF_CONFIG` set (or removed for None)."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def run_two_workers_and_one_process(script: str, out_dir: str) -> list[str]:
    """Runs `python -c script <out>` as two workers of one cluster and alone.

    The workers get `TF_CONFIG` for a two-worker cluster on localhost; the
    single process gets none. Each writes to the path it is given.

    Returns:
        The output paths: `[single, worker0, worker1]`.

    Raises:
        AssertionError: a process failed (with the tail of its stderr).
    """
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    outs = [os.path.join(out_dir, name) for name in ("single", "worker0", "worker1")]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, outs[1 + i]],
            cwd=REPO,
            env=worker_env(
                {"cluster": cluster, "task": {"type": "worker", "index": i}}
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    single = subprocess.run(
        [sys.executable, "-c", script, outs[0]],
        cwd=REPO,
        env=worker_env(None),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    for w in workers:
        try:
            _, err = w.communicate(timeout=600)
        finally:
            w.kill()
        assert w.returncode == 0, err[-3000:]
    return outs

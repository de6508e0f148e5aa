"""A real `ferry serve` for the tests: the binary the Rust build made (FERRY_BIN, or
$CARGO_TARGET_DIR/debug/ferry), on SQLite in a temporary directory and a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

API_TOKEN = "sdk-test-api-token"
WORKER_TOKEN = "sdk-test-worker-token"


def ferry_bin() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/ferry-target")
    return os.environ.get("FERRY_BIN", str(Path(target) / "debug" / "ferry"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "FERRY_API_TOKEN": API_TOKEN,
        "FERRY_WORKER_TOKEN": WORKER_TOKEN,
        "FERRY_LOG": os.environ.get("FERRY_LOG", "warn"),
    }
    child = subprocess.Popen(
        [ferry_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path_factory.mktemp("ferry"))],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert child.poll() is None, f"ferry serve exited with {child.returncode}"
        try:
            if httpx.get(f"{url}/healthz").is_success:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "ferry serve did not answer within 30 s"
        time.sleep(0.1)
    yield url
    child.terminate()
    child.wait(timeout=30)


def work_one(server: str, kind: str, result: object, items: list[object] | None = None) -> str:
    """Claims one job of `kind` and completes it with `result`, as a worker would."""
    worker = httpx.Client(base_url=server, headers={"authorization": f"Bearer {WORKER_TOKEN}"})
    claimed = worker.post(
        "/v1/worker/claim", json={"worker_id": "test", "kinds": [kind], "max_jobs": 1, "wait_ms": 5000}
    ).json()["jobs"]
    assert claimed, f"a {kind} job to claim"
    job = claimed[0]
    if items:
        answer = worker.post(
            f"/v1/worker/jobs/{job['id']}/progress", json={"lease": job["lease"], "items": items, "items_offset": 0}
        )
        assert answer.is_success, answer.text
    answer = worker.post(f"/v1/worker/jobs/{job['id']}/complete", json={"lease": job["lease"], "result": result})
    assert answer.is_success, answer.text
    return job["id"]

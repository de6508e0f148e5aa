"""The Playwright for Python example (examples/playwright_reviews.py) as users would run it:
real Playwright driving Debian's Chromium against the demo site (`ferry demo --site-only`).
The first job signs in with the password and saves the login as a Ferry session; the next
starts from that session, never sees the login page, and collects the same reviews."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

from conftest import API_TOKEN, WORKER_TOKEN, ferry_bin
from ferry_sdk import Ferry, Worker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from playwright_reviews import reviews_handler  # noqa: E402


@pytest.fixture(scope="module")
def demo_site() -> Iterator[str]:
    child = subprocess.Popen([ferry_bin(), "demo", "--site-only"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    url: list[str] = []
    reader = threading.Thread(target=lambda: url.append(child.stdout.readline().strip()), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert url and url[0].startswith("http"), f"ferry demo --site-only printed no URL within 30 s: {url}"
    yield url[0]
    child.terminate()
    child.wait(timeout=30)


def test_playwright_code_collects_reviews_behind_a_login_then_from_the_saved_session(server: str, demo_site: str) -> None:
    ferry = Ferry(server, API_TOKEN)
    payload = {"site": demo_site, "use_session": "demo-shop", "save_session": "demo-shop"}

    async def run() -> None:
        worker = Worker(
            server,
            WORKER_TOKEN,
            {"demo.reviews": reviews_handler(password="ferry-demo")},
            poll_wait_ms=500,
            handle_signals=False,
        )
        running = asyncio.create_task(worker.run())
        try:
            first = await asyncio.to_thread(ferry.wait, ferry.submit({"kind": "demo.reviews", "payload": payload})["id"], 60)
            assert first["status"] == "completed", first.get("error")
            assert first["result"] == {"reviews": 7, "shop": "Harbor Cafe", "signedIn": "with the password"}
            assert [s["name"] for s in ferry.sessions()] == ["demo-shop"]

            second = await asyncio.to_thread(ferry.wait, ferry.submit({"kind": "demo.reviews", "payload": payload})["id"], 60)
            assert second["status"] == "completed", second.get("error")
            assert second["result"] == {"reviews": 7, "shop": "Harbor Cafe", "signedIn": "with the saved session"}
            rows = [item["data"] for item in ferry.items(second["id"])]
            assert [r["id"] for r in rows] == ["rv-1", "rv-2", "rv-3", "rv-4", "rv-5", "rv-6", "rv-7"]
            assert rows[0]["author"] == "mina"
        finally:
            worker.stop()
            await running

    asyncio.run(run())

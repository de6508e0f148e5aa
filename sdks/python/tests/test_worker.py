"""The worker against a real server: results, progress and rows (sent concurrently, stored
once and in order); a handler's own error code; a plain function run in a thread; a client's
cancel stopping a running handler; a worker that lost its lease reporting nothing; a worker
killed mid-job whose job another worker finishes; a stop while a claim is being answered
running the jobs it brings."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from conftest import API_TOKEN, WORKER_TOKEN
from ferry_sdk import AsyncFerry
from ferry_sdk.worker import JobError, Worker


async def until(what: str, check, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        await asyncio.sleep(0.05)


def make(server: str, handlers, **options: Any) -> Worker:
    return Worker(server, WORKER_TOKEN, handlers, **{"poll_wait_ms": 500, "handle_signals": False, **options})


def test_results_progress_rows_and_errors_reach_the_job(server: str) -> None:
    async def reviews(job, ctx):
        await ctx.progress(current=1, total=2, message="page 1")
        await asyncio.gather(ctx.items([{"r": "a"}, {"r": "b"}]), ctx.items([{"r": "c"}]))
        return {"store": job["payload"]["store"], "reviews": 3}

    async def broken(job, ctx):
        raise JobError("PARTNER_DOWN", "the partner site answered 502", retryable=False)

    def counted(job, ctx):  # a plain function: runs in a thread
        ctx.items_sync([{"n": 1}])
        return "from a thread"

    async def run() -> None:
        worker = make(server, {"py.reviews": reviews, "py.broken": broken, "py.plain": counted})
        running = asyncio.create_task(worker.run())
        async with AsyncFerry(server, API_TOKEN) as ferry:
            good = await ferry.submit({"kind": "py.reviews", "payload": {"store": 7}})
            bad = await ferry.submit({"kind": "py.broken", "max_attempts": 3})
            plain = await ferry.submit({"kind": "py.plain"})
            done = await ferry.wait(good["id"], timeout=20)
            assert (done["status"], done["result"]) == ("completed", {"store": 7, "reviews": 3})
            assert [i["data"] async for i in ferry.items(good["id"])] == [{"r": "a"}, {"r": "b"}, {"r": "c"}]
            failed = await ferry.wait(bad["id"], timeout=20)
            assert (failed["status"], failed["attempt"], failed["error"]["code"]) == ("failed", 1, "PARTNER_DOWN")
            assert (await ferry.wait(plain["id"], timeout=20))["result"] == "from a thread"
        worker.stop()
        await running

    asyncio.run(run())


def test_a_clients_cancel_stops_the_running_handler(server: str) -> None:
    seen: dict[str, Any] = {}

    async def long(job, ctx):
        seen["started"] = True
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen["reason"] = ctx.stop_reason
            raise

    async def run() -> None:
        worker = make(server, {"py.long": long}, lease_ms=6000)
        running = asyncio.create_task(worker.run())
        async with AsyncFerry(server, API_TOKEN) as ferry:
            job = await ferry.submit({"kind": "py.long"})

            async def started() -> bool:
                return bool(seen.get("started"))

            await until("the handler to start", started)
            await ferry.cancel(job["id"])

            async def stopped() -> Any:
                return seen.get("reason")

            assert await until("the handler to be stopped", stopped) == "cancelled"

            async def cancelled() -> bool:
                return (await ferry.get(job["id"]))["status"] == "cancelled"

            await until("the job to be cancelled", cancelled)
        worker.stop()
        await running

    asyncio.run(run())


class DropBeats(httpx.AsyncBaseTransport):
    """Loses every heartbeat; records the leases claims hand out and the lease of every
    other report."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.claimed: list[tuple[str, str]] = []
        self.reported: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/heartbeat"):
            raise httpx.ConnectError("network down", request=request)
        if path.startswith("/v1/worker/jobs/"):
            self.reported.append((path, json.loads(request.content or b"{}").get("lease", "")))
        response = await self.inner.handle_async_request(request)
        if path.endswith("/claim"):
            body = await response.aread()
            self.claimed += [(job["id"], job["lease"]) for job in json.loads(body)["jobs"]]
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        return response


def test_a_worker_that_lost_its_lease_reports_nothing_and_the_next_worker_does(server: str) -> None:
    gate = None

    async def held(job, ctx):
        await gate.wait()
        return "from the first worker"

    async def run() -> None:
        nonlocal gate
        gate = asyncio.Event()
        transport = DropBeats()
        first = make(server, {"py.lease": held}, lease_ms=3000, worker_id="first", transport=transport)
        running = asyncio.create_task(first.run())
        async with AsyncFerry(server, API_TOKEN) as ferry:
            job = await ferry.submit({"kind": "py.lease", "max_attempts": 3})

            async def first_attempt() -> bool:
                return (await ferry.get(job["id"]))["status"] == "running"

            await until("the first attempt", first_attempt)

            async def handed_back() -> bool:
                now = await ferry.get(job["id"])
                return now["status"] != "running" or now["attempt"] > 1

            await until("the lease to run out and the job to be handed back", handed_back)
            first.stop()
            gate.set()
            await running
            # The first worker may have claimed the job again (a new attempt, a new lease):
            # what matters is that nothing went out under the lease it lost.
            lost = next(lease for job_id, lease in transport.claimed if job_id == job["id"])
            under_lost = [path for path, lease in transport.reported if lease == lost]
            assert under_lost == [], f"the first worker reported under its lost lease: {under_lost}"
            second = make(server, {"py.lease": lambda job, ctx: "from the second worker"}, worker_id="second")
            second_run = asyncio.create_task(second.run())
            done = await ferry.wait(job["id"], timeout=20)
            assert done["status"] == "completed" and done["attempt"] >= 2
            second.stop()
            await second_run

    asyncio.run(run())


def test_a_job_whose_worker_is_killed_mid_job_is_finished_by_another(server: str) -> None:
    script = Path(__file__).parent / "fixtures" / "doomed_worker.py"
    doomed = subprocess.Popen([sys.executable, str(script), server, WORKER_TOKEN], stdout=subprocess.PIPE, text=True)

    async def run() -> None:
        async with AsyncFerry(server, API_TOKEN) as ferry:
            job = await ferry.submit({"kind": "py.rescue", "max_attempts": 3})
            try:
                line = await asyncio.wait_for(asyncio.to_thread(doomed.stdout.readline), 20)
                assert line.strip() == f"started {job['id']}"
            finally:
                doomed.kill()
                doomed.wait()
            rescuer = make(server, {"py.rescue": lambda job, ctx: {"rescued": job["attempt"]}}, worker_id="rescuer")
            running = asyncio.create_task(rescuer.run())
            done = await ferry.wait(job["id"], timeout=30)
            assert (done["status"], done["result"]) == ("completed", {"rescued": 2})
            rescuer.stop()
            await running

    asyncio.run(run())


class SlowClaimAnswers(httpx.AsyncBaseTransport):
    """Holds back a claim's answer that carries jobs for 0.3 s after the server handed them
    out, and says when it has one."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.handed_out = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/claim"):
            return response
        body = await response.aread()
        if json.loads(body)["jobs"]:
            self.handed_out.set()
            await asyncio.sleep(0.3)
        return httpx.Response(response.status_code, headers=response.headers, content=body)


def test_a_stop_while_a_claim_is_answered_runs_its_jobs_instead_of_stranding_them(server: str) -> None:
    async def stops_when_told(job, ctx):
        await asyncio.Event().wait()

    async def run() -> None:
        transport = SlowClaimAnswers()
        worker = make(server, {"py.late": stops_when_told}, transport=transport, poll_wait_ms=5000, shutdown_grace=0.5)
        running = asyncio.create_task(worker.run())
        async with AsyncFerry(server, API_TOKEN) as ferry:
            job = await ferry.submit({"kind": "py.late", "max_attempts": 3})
            await asyncio.wait_for(transport.handed_out.wait(), 20)
            # The stop comes after the server handed the job out, before its answer arrived.
            worker.stop()
            await running
            handed_back = await ferry.get(job["id"])
            assert handed_back["status"] != "running", "the job was stranded under a lease nobody holds"
            assert (handed_back.get("error") or {}).get("code") == "WORKER_SHUTDOWN"

    asyncio.run(run())


class WatchClaims(httpx.AsyncBaseTransport):
    """Says when a claim has been sent."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/claim"):
            self.sent.set()
        return await self.inner.handle_async_request(request)


def test_a_stop_during_an_idle_long_poll_ends_without_waiting_out_the_poll(server: str) -> None:
    async def run() -> None:
        transport = WatchClaims()
        # Nothing to claim: the server would hold the claim 20 s.
        worker = make(server, {"py.nothing": lambda job, ctx: "never"}, transport=transport, poll_wait_ms=20_000)
        running = asyncio.create_task(worker.run())
        await asyncio.wait_for(transport.sent.wait(), 20)
        asked = time.monotonic()
        worker.stop()
        await running
        took = time.monotonic() - asked
        assert took < 10, f"the stop waited {took:.1f} s: the claim was not cut off"

    asyncio.run(run())

"""The client against a real server: submit, find, wait and read rows; refusals as
FerryError with their stable code; an event stream resumed after a dropped connection with
no event lost or repeated; the asyncio client; webhook signatures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time

import httpx
import pytest

from conftest import API_TOKEN, work_one
from ferry_sdk import AsyncFerry, Ferry, FerryError, messages, verify_webhook
from ferry_sdk.client import Call


def test_a_job_is_submitted_found_waited_for_and_read_back(server: str) -> None:
    ferry = Ferry(server, API_TOKEN)
    job = ferry.submit({"kind": "py.sync", "payload": {"store": 42}, "dedupe_key": "py-store-42"})
    assert job["status"] == "pending"
    assert ferry.submit({"kind": "py.sync", "dedupe_key": "py-store-42"})["id"] == job["id"]
    assert [j["id"] for j in ferry.list(search="PY-STORE", status="pending")["jobs"]] == [job["id"]]

    worker = threading.Timer(0.3, work_one, (server, "py.sync", {"reviews": 2}, [{"n": 1}, {"n": 2}]))
    worker.start()
    done = ferry.wait(job["id"], timeout=15)
    worker.join()
    assert done["status"] == "completed"
    assert done["result"] == {"reviews": 2}
    assert [item["data"] for item in ferry.items(job["id"])] == [{"n": 1}, {"n": 2}]

    stuck = ferry.submit({"kind": "py.nobody"})
    started = time.monotonic()
    with pytest.raises(FerryError) as waited:
        ferry.wait(stuck["id"], timeout=0.5)
    assert waited.value.code == "WAIT_TIMEOUT"
    assert time.monotonic() - started < 10


def test_refusals_are_ferry_errors_with_their_codes(server: str) -> None:
    ferry = Ferry(server, API_TOKEN)
    job = ferry.submit({"kind": "py.cancel"})
    assert ferry.cancel(job["id"])["status"] == "cancelled"
    assert ferry.retry(job["id"])["status"] == "pending"
    with pytest.raises(FerryError) as retried:
        ferry.retry(job["id"])
    assert (retried.value.status, retried.value.code) == (409, "INVALID_STATE")
    with pytest.raises(FerryError) as bad:
        ferry.submit({"kind": "no spaces allowed"})
    assert (bad.value.status, bad.value.code) == (422, "VALIDATION_FAILED")
    assert bad.value.fields[0]["field"] == "kind"
    with pytest.raises(FerryError) as stranger:
        Ferry(server, "wrong").get(job["id"])
    assert stranger.value.code == "UNAUTHORIZED"


class CutFirstStream(httpx.BaseTransport):
    """Cuts the first event stream after its first whole event (a dropped connection)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.streams = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            return response
        self.streams += 1
        if self.streams > 1:
            return response

        class Cut(httpx.SyncByteStream):
            def __iter__(inner_self):  # noqa: N805
                seen = b""
                for chunk in response.stream:
                    seen += chunk
                    yield chunk
                    if b"data:" in seen and b"\n\n" in seen[seen.index(b"data:") :]:
                        raise httpx.RemoteProtocolError("connection reset")

            def close(inner_self) -> None:  # noqa: N805
                response.close()

        return httpx.Response(response.status_code, headers=response.headers, stream=Cut())


def test_the_event_stream_resumes_after_a_dropped_connection_with_nothing_lost_or_repeated(server: str) -> None:
    ferry = Ferry(server, API_TOKEN)
    transport = CutFirstStream()
    reader = Ferry(server, API_TOKEN, transport=transport)
    head = ferry.call(Call("GET", "/v1/events", {"after": "now", "limit": 1}))
    ids = []

    def submit() -> None:
        for i in range(6):
            ids.append(ferry.submit({"kind": "py.stream", "payload": {"i": i}})["id"])
            time.sleep(0.05)

    writer = threading.Thread(target=submit)
    writer.start()
    seen = []
    for event in reader.events(
        after=head["next_after"], kinds=["py.stream"], types=["job.created"], until=time.monotonic() + 20
    ):
        seen.append(event["job_id"])
        if len(seen) == 6:
            break
    writer.join()
    assert transport.streams >= 2, "the stream was opened again"
    assert seen == ids


def test_the_asyncio_client_submits_waits_and_follows_events(server: str) -> None:
    async def run() -> None:
        async with AsyncFerry(server, API_TOKEN) as ferry:
            job = await ferry.submit({"kind": "py.async", "payload": {}})
            loop = asyncio.get_running_loop()
            waiting = asyncio.create_task(ferry.wait(job["id"], timeout=15))
            await loop.run_in_executor(None, work_one, server, "py.async", "done", [{"row": 1}])
            done = await waiting
            assert (done["status"], done["result"]) == ("completed", "done")
            assert [i["data"] async for i in ferry.items(job["id"])] == [{"row": 1}]
            types = []
            async for event in ferry.job_events(job["id"], after=0):
                types.append(event["type"])
                if event["type"] == "job.completed":
                    break
            assert types[0] == "job.created" and types[-1] == "job.completed"
            with pytest.raises(FerryError) as waited:
                await ferry.wait((await ferry.submit({"kind": "py.nobody"}))["id"], timeout=0.3)
            assert waited.value.code == "WAIT_TIMEOUT"

    asyncio.run(run())


def test_event_messages_follow_the_stream_rules() -> None:
    lines = ["id: 1", 'data: {"a"', "data: :1}", "", ": keep-alive", "", "id: 2", "", "data: x", ""]
    got = [(m.id, m.data) for m in messages(lines)]
    assert got == [("1", '{"a"\n:1}'), ("2", ""), (None, "x")]


def test_a_webhook_delivery_verifies_with_its_secret_and_not_when_changed_late_or_unsigned() -> None:
    secret, body, now = "whsec-a-long-random-string", b'{"type":"job.completed"}', 1_800_000_000
    mac = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Ferry-Timestamp": str(now), "Ferry-Signature": f"v1={mac}"}
    assert verify_webhook(secret, headers, body, now=now)
    assert verify_webhook(secret, {k.lower(): v for k, v in headers.items()}, body, now=now)
    assert not verify_webhook(secret, headers, body.replace(b"completed", b"failed"), now=now)
    assert not verify_webhook("another-secret-of-length", headers, body, now=now)
    assert not verify_webhook(secret, headers, body, now=now + 301)
    assert not verify_webhook(secret, {"Ferry-Timestamp": str(now)}, body, now=now)

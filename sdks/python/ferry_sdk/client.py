"""The client API over httpx, blocking (`Ferry`) and asyncio (`AsyncFerry`): submit and
follow jobs, page lists, wait for a job by its events, stream events resumed from the last
id after a dropped connection, and manage batches, schedules, datasets, sessions and
webhooks. Bodies and answers are the JSON of Ferry's OpenAPI document (`ferry openapi`)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator, Mapping
from urllib.parse import quote

import httpx

from .errors import FerryError, FerryUnreachable, error_from
from .sse import Parser

#: A JSON object as Ferry sends it (see the OpenAPI document for each one's fields).
Json = dict[str, Any]

FINAL = frozenset({"completed", "failed", "cancelled"})
#: Seconds without a byte after which an event stream is taken for dropped (the server
#: sends a keep-alive every 15 s).
STREAM_SILENCE = 45.0
FINAL_EVENTS = frozenset({"job.completed", "job.failed", "job.cancelled"})


def is_final(job: Mapping[str, Any]) -> bool:
    """Whether a job is done: completed, failed for good, or cancelled."""
    return job.get("status") in FINAL


def backoff(attempt: int) -> float:
    """0.25 s, 0.5 s, 1 s, ... up to 10 s, with jitter."""
    base = min(10.0, 0.25 * 2**attempt)
    return base / 2 + random.random() * base / 2


@dataclass
class Call:
    """One request of the API: what both clients send."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if v is not None}


def _id(value: str) -> str:
    return quote(str(value), safe="")


class Calls:
    """The API's operations as requests, shared by the blocking and asyncio clients."""

    @staticmethod
    def submit(job: Json) -> Call:
        return Call("POST", "/v1/jobs", json=job)

    @staticmethod
    def submit_many(jobs: list[Json]) -> Call:
        return Call("POST", "/v1/jobs/batch", json={"jobs": jobs})

    @staticmethod
    def get(job_id: str) -> Call:
        return Call("GET", f"/v1/jobs/{_id(job_id)}")

    @staticmethod
    def list(**query: Any) -> Call:
        return Call("GET", "/v1/jobs", params=query)

    @staticmethod
    def items(job_id: str, after: int = 0, limit: int = 1000) -> Call:
        return Call("GET", f"/v1/jobs/{_id(job_id)}/items", params={"after": after, "limit": limit})

    @staticmethod
    def cancel(job_id: str) -> Call:
        return Call("POST", f"/v1/jobs/{_id(job_id)}/cancel")

    @staticmethod
    def retry(job_id: str) -> Call:
        return Call("POST", f"/v1/jobs/{_id(job_id)}/retry")

    @staticmethod
    def create_batch(batch: Json) -> Call:
        return Call("POST", "/v1/batches", json=batch)

    @staticmethod
    def batch(batch_id: str) -> Call:
        return Call("GET", f"/v1/batches/{_id(batch_id)}")

    @staticmethod
    def create_schedule(schedule: Json) -> Call:
        return Call("POST", "/v1/schedules", json=schedule)

    @staticmethod
    def run_schedule(name: str) -> Call:
        return Call("POST", f"/v1/schedules/{_id(name)}/run")

    @staticmethod
    def datasets() -> Call:
        return Call("GET", "/v1/datasets")

    @staticmethod
    def sessions() -> Call:
        return Call("GET", "/v1/sessions")

    @staticmethod
    def create_webhook(spec: Json) -> Call:
        return Call("POST", "/v1/webhooks", json=spec)

    @staticmethod
    def events_head(path: str, filters: dict[str, Any]) -> Call:
        return Call("GET", path, params={**filters, "after": "now", "limit": 1})


def _filters(kinds: list[str] | None, types: list[str] | None) -> dict[str, Any]:
    return {
        "kind": ",".join(kinds) if kinds else None,
        "type": ",".join(types) if types else None,
    }


# What the blocking and the asyncio client share: each decision of a call or an event
# stream, written once; the two clients only do the I/O and the sleeping.


def _http_options(server: str, token: str, timeout: float) -> dict[str, Any]:
    return {"base_url": server.rstrip("/"), "headers": {"authorization": f"Bearer {token}"}, "timeout": timeout}


class _Attempts:
    """One call's attempts: reads are tried again while the server is briefly away."""

    def __init__(self, call: Call, retries: int) -> None:
        self.call = call
        self.reads = retries if call.method == "GET" else 0

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.reads + 1))

    def unreachable(self, attempt: int, e: httpx.TransportError) -> float:
        """The pause before trying again after no answer; raises when out of attempts."""
        if attempt < self.reads:
            return backoff(attempt)
        raise FerryUnreachable(f"{self.call.method} {self.call.path}: {e}") from e

    def refused(self, attempt: int, response: httpx.Response) -> float:
        """The pause before trying again after a transient refusal; raises otherwise."""
        error = error_from(response)
        if error.transient and attempt < self.reads:
            return error.retry_after or backoff(attempt)
        raise error


def _answer(response: httpx.Response) -> Any:
    return None if response.status_code == 204 or not response.content else response.json()


class _Stream:
    """An event stream's position and failures across the connections that carry it."""

    def __init__(self, position: int, filters: dict[str, Any]) -> None:
        self.position, self.filters, self.failures = position, filters, 0

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in {**self.filters, "after": self.position}.items() if v is not None}

    def refused(self, response: httpx.Response) -> float:
        """The pause before opening again after a transient refusal; raises otherwise."""
        error = error_from(response)
        if not error.transient:
            raise error
        return self.dropped(error.retry_after)

    def dropped(self, pause: float | None = None) -> float:
        """The pause before opening again after a dropped connection."""
        pause = pause or backoff(self.failures)
        self.failures += 1
        return pause

    def event(self, parser: Parser, line: str) -> Json | None:
        """The event a line completes, if any (the position moves on with its id)."""
        message = parser.line(line)
        if message is None:
            return None
        if message.id is not None and message.id.isdigit():
            self.position = int(message.id)
        self.failures = 0
        return json.loads(message.data) if message.data else None


_STREAM_HEADERS = {"accept": "text/event-stream"}


class Ferry:
    """The blocking client: `Ferry("http://127.0.0.1:7878", token="fk_...")`."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(**_http_options(server, token, timeout), transport=transport)
        self._retries = retries

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Ferry":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, call: Call) -> Any:
        """Sends `call`; the JSON answer (None for `204`). Reads are tried again while the
        server is briefly away; an error is a `FerryError`."""
        attempts = _Attempts(call, self._retries)
        for attempt in attempts:
            try:
                response = self._http.request(call.method, call.path, params=call.query(), json=call.json)
            except httpx.TransportError as e:
                time.sleep(attempts.unreachable(attempt, e))
                continue
            if response.is_success:
                return _answer(response)
            time.sleep(attempts.refused(attempt, response))
        raise AssertionError("unreachable")

    # Jobs

    def submit(self, job: Json) -> Json:
        """Stores a job and answers it; a `dedupe_key` held by an unfinished job answers that job."""
        return self.call(Calls.submit(job))

    def submit_many(self, jobs: list[Json]) -> Json:
        """Stores all the jobs or none: `{"jobs", "created"}`."""
        return self.call(Calls.submit_many(jobs))

    def get(self, job_id: str) -> Json:
        return self.call(Calls.get(job_id))

    def list(self, **query: Any) -> Json:
        """One page, newest first: `status`, `kind`, `label`, `search`, `parent`, `limit`, `cursor`."""
        return self.call(Calls.list(**query))

    def jobs(self, **query: Any) -> Iterator[Json]:
        """Every job the query matches, page after page."""
        while True:
            page = self.list(**query)
            yield from page["jobs"]
            if not page.get("next_cursor"):
                return
            query["cursor"] = page["next_cursor"]

    def items(self, job_id: str) -> Iterator[Json]:
        """Every row the job's worker reported, in order."""
        after = 0
        while True:
            page = self.call(Calls.items(job_id, after))
            if not page["items"]:
                return
            yield from page["items"]
            after = page["next_after"]

    def cancel(self, job_id: str) -> Json:
        return self.call(Calls.cancel(job_id))

    def retry(self, job_id: str) -> Json:
        return self.call(Calls.retry(job_id))

    def wait(self, job_id: str, timeout: float | None = None) -> Json:
        """The job once it is final, following its events (no polling); a `FerryError` with
        code `WAIT_TIMEOUT` after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.get(job_id)
        if is_final(job):
            return job
        for event in self.job_events(job_id, after=0, until=deadline):
            if event["type"] in FINAL_EVENTS:
                job = self.get(job_id)
                if is_final(job):
                    return job
        raise FerryError(0, "WAIT_TIMEOUT", f"job {job_id} is not final after {timeout} s")

    # Events

    def events(
        self,
        after: int | str = "now",
        kinds: list[str] | None = None,
        types: list[str] | None = None,
        until: float | None = None,
    ) -> Iterator[Json]:
        """The tenant's events as they happen (`after` an event id, or "now"), resumed
        across dropped connections; ends at `until` (a `time.monotonic()` instant)."""
        return self._stream("/v1/events", after, _filters(kinds, types), until)

    def job_events(self, job_id: str, after: int | str = "now", until: float | None = None) -> Iterator[Json]:
        return self._stream(f"/v1/jobs/{_id(job_id)}/events", after, {}, until)

    def _stream(self, path: str, after: int | str, filters: dict[str, Any], until: float | None) -> Iterator[Json]:
        position = after if isinstance(after, int) else self.call(Calls.events_head(path, filters))["next_after"]
        stream = _Stream(position, filters)
        while until is None or time.monotonic() < until:
            # The server sends a keep-alive comment every 15 s: a connection silent for three
            # of them is gone, and is opened again.
            read_timeout = STREAM_SILENCE if until is None else max(0.05, min(STREAM_SILENCE, until - time.monotonic()))
            try:
                with self._http.stream(
                    "GET",
                    path,
                    params=stream.params(),
                    headers=_STREAM_HEADERS,
                    timeout=httpx.Timeout(30.0, read=read_timeout),
                ) as response:
                    if not response.is_success:
                        response.read()
                        time.sleep(stream.refused(response))
                        continue
                    parser = Parser()
                    for line in response.iter_lines():
                        if until is not None and time.monotonic() >= until:
                            return
                        event = stream.event(parser, line)
                        if event is not None:
                            yield event
            except httpx.ReadTimeout:
                continue
            except httpx.TransportError:
                time.sleep(stream.dropped())

    # Batches, schedules, datasets, sessions, webhooks

    def create_batch(self, batch: Json) -> Json:
        return self.call(Calls.create_batch(batch))

    def batch(self, batch_id: str) -> Json:
        return self.call(Calls.batch(batch_id))

    def create_schedule(self, schedule: Json) -> Json:
        return self.call(Calls.create_schedule(schedule))

    def run_schedule(self, name: str) -> Json:
        return self.call(Calls.run_schedule(name))

    def datasets(self) -> list[Json]:
        return self.call(Calls.datasets())["datasets"]

    def sessions(self) -> list[Json]:
        return self.call(Calls.sessions())["sessions"]

    def create_webhook(self, spec: Json) -> Json:
        return self.call(Calls.create_webhook(spec))


class AsyncFerry:
    """The asyncio client: the same operations, awaited."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(**_http_options(server, token, timeout), transport=transport)
        self._retries = retries

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncFerry":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def call(self, call: Call) -> Any:
        attempts = _Attempts(call, self._retries)
        for attempt in attempts:
            try:
                response = await self._http.request(call.method, call.path, params=call.query(), json=call.json)
            except httpx.TransportError as e:
                await asyncio.sleep(attempts.unreachable(attempt, e))
                continue
            if response.is_success:
                return _answer(response)
            await asyncio.sleep(attempts.refused(attempt, response))
        raise AssertionError("unreachable")

    async def submit(self, job: Json) -> Json:
        return await self.call(Calls.submit(job))

    async def submit_many(self, jobs: list[Json]) -> Json:
        return await self.call(Calls.submit_many(jobs))

    async def get(self, job_id: str) -> Json:
        return await self.call(Calls.get(job_id))

    async def list(self, **query: Any) -> Json:
        return await self.call(Calls.list(**query))

    async def items(self, job_id: str) -> AsyncIterator[Json]:
        after = 0
        while True:
            page = await self.call(Calls.items(job_id, after))
            if not page["items"]:
                return
            for item in page["items"]:
                yield item
            after = page["next_after"]

    async def cancel(self, job_id: str) -> Json:
        return await self.call(Calls.cancel(job_id))

    async def retry(self, job_id: str) -> Json:
        return await self.call(Calls.retry(job_id))

    async def wait(self, job_id: str, timeout: float | None = None) -> Json:
        """The job once it is final, following its events; `WAIT_TIMEOUT` after `timeout` s."""

        async def follow() -> Json:
            job = await self.get(job_id)
            if is_final(job):
                return job
            async for event in self.job_events(job_id, after=0):
                if event["type"] in FINAL_EVENTS:
                    job = await self.get(job_id)
                    if is_final(job):
                        return job
            raise AssertionError("an event stream does not end by itself")

        try:
            return await asyncio.wait_for(follow(), timeout)
        except asyncio.TimeoutError:
            raise FerryError(0, "WAIT_TIMEOUT", f"job {job_id} is not final after {timeout} s") from None

    def events(
        self, after: int | str = "now", kinds: list[str] | None = None, types: list[str] | None = None
    ) -> AsyncIterator[Json]:
        """The tenant's events as they happen, resumed across dropped connections; stop by
        leaving the `async for` (or cancelling the task)."""
        return self._stream("/v1/events", after, _filters(kinds, types))

    def job_events(self, job_id: str, after: int | str = "now") -> AsyncIterator[Json]:
        return self._stream(f"/v1/jobs/{_id(job_id)}/events", after, {})

    async def _stream(self, path: str, after: int | str, filters: dict[str, Any]) -> AsyncIterator[Json]:
        position = after if isinstance(after, int) else (await self.call(Calls.events_head(path, filters)))["next_after"]
        stream = _Stream(position, filters)
        while True:
            try:
                async with self._http.stream(
                    "GET",
                    path,
                    params=stream.params(),
                    headers=_STREAM_HEADERS,
                    timeout=httpx.Timeout(30.0, read=STREAM_SILENCE),
                ) as response:
                    if not response.is_success:
                        await response.aread()
                        await asyncio.sleep(stream.refused(response))
                        continue
                    parser = Parser()
                    async for line in response.aiter_lines():
                        event = stream.event(parser, line)
                        if event is not None:
                            yield event
            except httpx.TransportError:
                await asyncio.sleep(stream.dropped())

    async def jobs(self, **query: Any) -> AsyncIterator[Json]:
        """Every job the query matches, page after page."""
        while True:
            page = await self.list(**query)
            for job in page["jobs"]:
                yield job
            if not page.get("next_cursor"):
                return
            query["cursor"] = page["next_cursor"]

    async def create_batch(self, batch: Json) -> Json:
        return await self.call(Calls.create_batch(batch))

    async def batch(self, batch_id: str) -> Json:
        return await self.call(Calls.batch(batch_id))

    async def create_schedule(self, schedule: Json) -> Json:
        return await self.call(Calls.create_schedule(schedule))

    async def run_schedule(self, name: str) -> Json:
        return await self.call(Calls.run_schedule(name))

    async def datasets(self) -> list[Json]:
        return (await self.call(Calls.datasets()))["datasets"]

    async def sessions(self) -> list[Json]:
        return (await self.call(Calls.sessions()))["sessions"]

    async def create_webhook(self, spec: Json) -> Json:
        return await self.call(Calls.create_webhook(spec))

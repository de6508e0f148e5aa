"""A worker running your own Python code: it claims jobs of the kinds it has handlers for,
holds each job's lease with heartbeats, stops a handler (its task is cancelled) when a
client cancels the job, the lease is lost or the job's deadline passes, reports progress
and rows, and reports the result once (tried again while the server is away, dropped when
the lease is lost: another worker has the job). SIGTERM and SIGINT stop it gracefully.

Handlers are `async def handler(job, ctx)`, or plain functions, which run in a thread and
check `ctx.stopped` themselves."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import socket
import time
from typing import Any, Awaitable, Callable, Mapping

import httpx

from .client import Json, backoff
from .errors import FerryError, FerryUnreachable, error_from

log = logging.getLogger("ferry_sdk.worker")

#: How long a stopped handler may take to end before its job is reported without it.
ABANDON_AFTER = 5.0
#: How long a stop waits for the answer of a claim already sent (as the Rust worker does).
CLAIM_ANSWER_WAIT = 1.0
#: The most rows one progress report carries (the server's limit).
MAX_ROWS_PER_REPORT = 1000


class JobError(Exception):
    """Raise from a handler to fail the attempt with your own code; `retryable=False` fails
    the job for good."""

    def __init__(self, code: str, message: str, *, retryable: bool = True, retry_after_ms: int | None = None):
        super().__init__(message)
        self.code, self.message, self.retryable, self.retry_after_ms = code, message, retryable, retry_after_ms


class JobContext:
    """What a handler gets beside the job."""

    def __init__(self, worker: "Worker", job: Json, loop: asyncio.AbstractEventLoop, received_at: float) -> None:
        self._worker, self.job, self._loop = worker, job, loop
        #: Set when the handler should stop; `stop_reason` says why: "cancelled", "lease_lost",
        #: "deadline" or "shutdown".
        self.stopped = asyncio.Event()
        self.stop_reason: str | None = None
        self._offset = 0
        self._rows = asyncio.Lock()
        self.rows_failed: BaseException | None = None
        # On this machine's clock. The server grants a lease as it answers (a long poll
        # answers when a job comes), so it runs from the answer less a margin for its way
        # here; a heartbeat's from when it was sent.
        lease = job["lease_ms"] / 1000
        self.lease_until = received_at + lease - min(1.0, lease / 10)

    def lease_held(self) -> bool:
        return self.stop_reason != "lease_lost" and time.monotonic() <= self.lease_until

    async def progress(self, current: int | None = None, total: int | None = None, message: str | None = None) -> None:
        """Reports progress (shown on the job and its events)."""
        body = {k: v for k, v in {"current": current, "total": total, "message": message}.items() if v is not None}
        await self._worker._report_hard(self.job, "progress", body, self.lease_held)

    async def items(self, rows: list[Any]) -> None:
        """Appends rows to the job's items, in order, each stored once even when a report is
        repeated after a network error."""
        at = self._offset
        self._offset += len(rows)
        async with self._rows:
            try:
                for i in range(0, len(rows), MAX_ROWS_PER_REPORT):
                    part = rows[i : i + MAX_ROWS_PER_REPORT]
                    await self._worker._report_hard(
                        self.job, "progress", {"items": part, "items_offset": at + i}, self.lease_held
                    )
            except BaseException as e:
                self.rows_failed = self.rows_failed or e
                raise

    async def load_session(self) -> Any:
        """The saved state of the session the job uses (its payload's `use_session`), e.g. a
        Playwright `storage_state`; None when nothing is saved under the name yet."""
        answer = await self._worker._report_hard(self.job, "session/load", {}, self.lease_held)
        return answer.get("state")

    async def save_session(self, state: Any) -> None:
        """Saves `state` as the session the job saves (its payload's `save_session`)."""
        name = (self.job.get("payload") or {}).get("save_session")
        if not isinstance(name, str):
            raise ValueError("the job's payload names no save_session")
        await self._worker._report_hard(self.job, "session/save", {"name": name, "state": state}, self.lease_held)

    # For handlers that run in a thread.
    def progress_sync(self, **update: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.progress(**update), self._loop).result()

    def items_sync(self, rows: list[Any]) -> None:
        asyncio.run_coroutine_threadsafe(self.items(rows), self._loop).result()


Handler = Callable[[Json, JobContext], Awaitable[Any]] | Callable[[Json, JobContext], Any]


def _stopped(reason: str) -> Json:
    if reason == "cancelled":
        return {"code": "CANCELLED", "message": "cancelled by a client", "retryable": False}
    if reason == "deadline":
        return {"code": "TIMEOUT", "message": "the attempt ran past its deadline", "retryable": True}
    return {"code": "WORKER_SHUTDOWN", "message": "the worker stopped before the job finished", "retryable": True}


def _failure(e: BaseException) -> Json:
    if isinstance(e, JobError):
        error: Json = {"code": e.code, "message": e.message[:8000], "retryable": e.retryable}
        if e.retry_after_ms is not None:
            error["retry_after_ms"] = e.retry_after_ms
        return error
    return {"code": "HANDLER_ERROR", "message": f"{type(e).__name__}: {e}"[:8000], "retryable": True}


class Worker:
    """`Worker(server, token, handlers={"reviews.sync": sync_reviews}).run()` with a worker token."""

    def __init__(
        self,
        server: str,
        token: str,
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 4,
        worker_id: str | None = None,
        lease_ms: int | None = None,
        poll_wait_ms: int = 20_000,
        shutdown_grace: float = 30.0,
        handle_signals: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not handlers:
            raise ValueError("a worker needs at least one handler")
        for kind in handlers:
            if "*" in kind:
                raise ValueError(f"handlers are for kinds, not patterns: {kind}")
        self._server, self._token, self._transport = server.rstrip("/"), token, transport
        self.handlers = dict(handlers)
        self.concurrency = max(1, concurrency)
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.lease_ms, self.poll_wait_ms = lease_ms, poll_wait_ms
        self.shutdown_grace, self.handle_signals = shutdown_grace, handle_signals
        self._running: dict[str, tuple[JobContext, asyncio.Task[None], Callable[[str], None]]] = {}
        self._stopping = asyncio.Event()
        # When the stop came: the grace period runs from then.
        self._stopped_at: float | None = None
        self._http: httpx.AsyncClient | None = None

    def stop(self) -> None:
        """Stops claiming; running jobs get the grace period, then are stopped and handed back.
        (Call it from the worker's event loop; signals do.)"""
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()
        self._stopping.set()

    def run_forever(self) -> None:
        """Runs the worker until SIGTERM or SIGINT (blocking)."""
        asyncio.run(self.run())

    async def run(self) -> None:
        """Claims and runs jobs until `stop()` (or SIGTERM/SIGINT); returns once every job is reported."""
        loop = asyncio.get_running_loop()
        signals = []
        if self.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, self.stop)
                    signals.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass  # not the main thread, or a platform without them
        self._http = httpx.AsyncClient(
            base_url=self._server, headers={"authorization": f"Bearer {self._token}"}, timeout=30.0, transport=self._transport
        )
        failures = 0
        try:
            while not self._stopping.is_set():
                free = self.concurrency - len(self._running)
                if free <= 0:
                    waits = [t for _, t, _ in self._running.values()]
                    stop = asyncio.ensure_future(self._stopping.wait())
                    await asyncio.wait([*waits, stop], return_when=asyncio.FIRST_COMPLETED)
                    stop.cancel()
                    continue
                body = {"worker_id": self.worker_id, "kinds": list(self.handlers), "max_jobs": free, "wait_ms": self.poll_wait_ms}
                if self.lease_ms:
                    body["lease_ms"] = self.lease_ms
                claim = asyncio.ensure_future(self._call("POST", "/v1/worker/claim", body, timeout=self.poll_wait_ms / 1000 + 30))
                stop = asyncio.ensure_future(self._stopping.wait())
                await asyncio.wait([claim, stop], return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if not claim.done():
                    # A stop gives a claim already sent a moment to answer: it may hold jobs
                    # the server has handed out, which would otherwise wait for their leases
                    # to run out. They run within the grace period like the others.
                    await asyncio.wait([claim], timeout=min(CLAIM_ANSWER_WAIT, self.shutdown_grace))
                if not claim.done():
                    claim.cancel()
                    break
                try:
                    jobs = claim.result()["jobs"]
                    failures = 0
                except (FerryUnreachable, FerryError) as e:
                    if isinstance(e, FerryError) and not e.transient:
                        raise
                    log.warning("claim failed (%s); trying again", e)
                    try:
                        pause = getattr(e, "retry_after", None) or backoff(failures)
                        await asyncio.wait_for(self._stopping.wait(), pause)
                    except asyncio.TimeoutError:
                        pass
                    failures += 1
                    continue
                received_at = time.monotonic()
                for job in jobs:
                    self._start(job, loop, received_at)
        finally:
            await self._drain()
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self._http.aclose()

    async def _drain(self) -> None:
        if not self._running:
            return
        tasks = [t for _, t, _ in self._running.values()]
        spent = 0.0 if self._stopped_at is None else time.monotonic() - self._stopped_at
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, self.shutdown_grace - spent))
        if pending:
            for _, _, stop in list(self._running.values()):
                stop("shutdown")
            await asyncio.wait(pending)

    async def _call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        assert self._http is not None
        try:
            response = await self._http.request(method, path, json=body, timeout=timeout or 30.0)
        except httpx.TransportError as e:
            raise FerryUnreachable(f"{method} {path}: {e}") from e
        if not response.is_success:
            raise error_from(response)
        return None if response.status_code == 204 or not response.content else response.json()

    async def _report(self, job: Json, what: str, body: Json, timeout: float | None = None) -> Any:
        return await self._call("POST", f"/v1/worker/jobs/{job['id']}/{what}", {**body, "lease": job["lease"]}, timeout)

    async def _report_hard(self, job: Json, what: str, body: Json, keep_trying: Callable[[], bool]) -> Any:
        attempt = 0
        while True:
            try:
                return await self._report(job, what, body)
            except (FerryUnreachable, FerryError) as e:
                transient = isinstance(e, FerryUnreachable) or e.transient
                if not transient or not keep_trying():
                    raise
                await asyncio.sleep(backoff(attempt))
                attempt += 1

    def _start(self, job: Json, loop: asyncio.AbstractEventLoop, received_at: float) -> None:
        ctx = JobContext(self, job, loop, received_at)
        handler = self.handlers.get(job["kind"])
        deadline_in = (
            _parse(job["deadline"]) - (_parse(job["lease_expires_at"]) - job["lease_ms"] / 1000)
        )
        work: asyncio.Future[Any] | None = None
        in_thread = not (inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(getattr(handler, "__call__", None)))

        def stop(reason: str) -> None:
            if ctx.stop_reason:
                return
            ctx.stop_reason = reason
            ctx.stopped.set()
            # A task is cancelled at once; a thread cannot be, and is left `ABANDON_AFTER` later.
            if work is not None and not in_thread:
                work.cancel()

        async def beat() -> None:
            while True:
                await asyncio.sleep(max(0.2, job["lease_ms"] / 3000))
                sent = time.monotonic()
                try:
                    status = await self._report(job, "heartbeat", {}, timeout=max(1.0, job["lease_ms"] / 3000))
                    ctx.lease_until = max(ctx.lease_until, sent + job["lease_ms"] / 1000)
                    if status.get("cancel"):
                        stop("cancelled")
                except FerryError as e:
                    if e.code == "LEASE_LOST":
                        stop("lease_lost")
                        return
                except FerryUnreachable:
                    pass
                if time.monotonic() > ctx.lease_until:
                    stop("lease_lost")
                    return

        async def run() -> None:
            nonlocal work
            beating = asyncio.ensure_future(beat())
            timer = loop.call_later(max(0.0, deadline_in), stop, "deadline")
            outcome: Json
            try:
                try:
                    if handler is None:
                        raise JobError("NO_HANDLER", f"this worker has no handler for {job['kind']}")
                    work = _in_daemon_thread(loop, handler, job, ctx) if in_thread else asyncio.ensure_future(handler(job, ctx))
                    try:
                        result = await _ended(work, ctx, ABANDON_AFTER)
                    except asyncio.CancelledError:
                        if ctx.stop_reason is None:
                            raise
                        result = _ABANDONED
                    if inspect.isawaitable(result):
                        result = await result
                    if ctx.stop_reason in ("cancelled", "lease_lost") or result is _ABANDONED:
                        outcome = {"error": _stopped(ctx.stop_reason or "shutdown")}
                    else:
                        async with ctx._rows:  # every row report is in first
                            pass
                        if ctx.rows_failed is not None:
                            message = f"rows were not stored: {ctx.rows_failed}"
                            outcome = {"error": {"code": "ITEMS_UNDELIVERED", "message": message, "retryable": True}}
                        else:
                            outcome = {"result": result}
                except BaseException as e:  # the handler's own failure, SystemExit included
                    if isinstance(e, asyncio.CancelledError) and ctx.stop_reason is None and work is None:
                        raise
                    outcome = {"error": _stopped(ctx.stop_reason) if ctx.stop_reason else _failure(e)}
                finally:
                    timer.cancel()
                if not ctx.lease_held():
                    log.warning("job %s: the lease was lost; nothing is reported (another worker has the job)", job["id"])
                    return
                await self._finish(job, outcome, ctx.lease_held)
            finally:
                beating.cancel()

        task = asyncio.ensure_future(run())
        self._running[job["lease"]] = (ctx, task, stop)
        task.add_done_callback(lambda _: self._running.pop(job["lease"], None))

    async def _finish(self, job: Json, outcome: Json, keep_trying: Callable[[], bool]) -> None:
        try:
            if "result" in outcome:
                try:
                    await self._report_hard(job, "complete", {"result": outcome["result"]}, keep_trying)
                except FerryError as e:
                    if e.status in (400, 413, 422):
                        raise JobError("RESULT_REFUSED", f"Ferry refused the result: {e}", retryable=False) from e
                    raise
                except (TypeError, ValueError) as e:
                    raise JobError("RESULT_REFUSED", f"the result is not JSON: {e}", retryable=False) from e
            else:
                await self._report_hard(job, "fail", {"error": outcome["error"]}, keep_trying)
        except JobError as e:
            try:
                await self._report_hard(job, "fail", {"error": _failure(e)}, keep_trying)
            except (FerryError, FerryUnreachable) as again:
                log.warning("job %s: the failure was not applied: %s", job["id"], again)
        except (FerryError, FerryUnreachable) as e:
            log.warning("job %s: the report was not applied: %s", job["id"], e)


_ABANDONED = object()


def _in_daemon_thread(loop: asyncio.AbstractEventLoop, handler: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """Runs `handler(*args)` on a thread of its own (a daemon: one that never returns does not
    keep the process alive, nor hold a slot of a shared pool)."""
    import threading

    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            (future.set_result if ok else future.set_exception)(value)

    def target() -> None:
        try:
            value = handler(*args)
        except BaseException as e:  # handed to the loop, whatever it is
            loop.call_soon_threadsafe(settle, False, e)
        else:
            loop.call_soon_threadsafe(settle, True, value)

    threading.Thread(target=target, name="ferry-job", daemon=True).start()
    return future


async def _ended(work: asyncio.Future[Any], ctx: JobContext, abandon_after: float) -> Any:
    """The handler's result; once the job is stopped, at most `abandon_after` more seconds
    (a thread cannot be cancelled), then `_ABANDONED`."""
    stop = asyncio.ensure_future(ctx.stopped.wait())
    try:
        done, _ = await asyncio.wait([work, stop], return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            return work.result()
        done, _ = await asyncio.wait([work], timeout=abandon_after)
        if work in done:
            return work.result()
        return _ABANDONED
    finally:
        stop.cancel()


def _parse(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time."""
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

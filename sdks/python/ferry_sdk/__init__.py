"""Ferry's Python SDK: a client for Ferry's API, blocking (`Ferry`) and asyncio
(`AsyncFerry`), a worker for your own code (`Worker`), and webhook checks
(`verify_webhook`)."""

from .client import AsyncFerry, Ferry, is_final
from .errors import FerryError, FerryUnreachable
from .sse import Message, messages
from .webhooks import verify_webhook
from .worker import JobContext, JobError, Worker

__all__ = [
    "AsyncFerry",
    "Ferry",
    "FerryError",
    "FerryUnreachable",
    "JobContext",
    "JobError",
    "Message",
    "is_final",
    "messages",
    "verify_webhook",
    "Worker",
]

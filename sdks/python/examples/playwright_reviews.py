"""A worker running Playwright for Python (with Debian's Chromium) for `demo.reviews` jobs.

It signs in to the demo site (`ferry demo --site-only`) once, keeps the login as a Ferry
session (`save_session`, sealed by the server), and later jobs start from it (`use_session`)
without the password. Each page of reviews goes to the job as rows.

    FERRY_URL=… FERRY_WORKER_TOKEN=… DEMO_PASSWORD=ferry-demo python playwright_reviews.py

and jobs like {"kind": "demo.reviews", "payload": {"site": "http://127.0.0.1:PORT",
"use_session": "demo-shop", "save_session": "demo-shop"}}.
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable

from playwright.async_api import async_playwright

from ferry_sdk import JobContext, JobError, Worker

READ_REVIEWS = """items => items.map(li => ({
    id: li.dataset.id || "",
    author: (li.querySelector(".author")?.textContent || "").replace(/^by /, ""),
    stars: parseInt(li.querySelector(".stars")?.textContent || "0", 10),
    text: li.querySelector(".text")?.textContent || "",
}))"""


def reviews_handler(password: str, chromium: str = "/usr/bin/chromium") -> Callable[[Any, JobContext], Awaitable[Any]]:
    async def handler(job: Any, ctx: JobContext) -> Any:
        site = job["payload"]["site"]
        # A cancel, a lost lease or the deadline cancels this task; `async with` closes the
        # browser on the way out.
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                saved = await ctx.load_session()
                context = await browser.new_context(storage_state=saved) if saved else await browser.new_context()
                page = await context.new_page()
                await page.goto(f"{site}/site/account/reviews")
                signed_in = "with the saved session"
                if page.url.endswith("/site/login"):
                    await page.fill("#user", "demo")
                    await page.fill("#password", password)
                    await page.click("#sign-in")
                    # The account page (#who), or the login page again with its error.
                    await page.wait_for_selector("#who, #error")
                    if await page.is_visible("#error"):
                        raise JobError("LOGIN_FAILED", "the site refused the login", retryable=False)
                    await page.goto(f"{site}/site/account/reviews")
                    signed_in = "with the password"
                count = 0
                while True:
                    await page.wait_for_selector("li.review")
                    rows = await page.eval_on_selector_all("li.review", READ_REVIEWS)
                    await ctx.items(rows)
                    count += len(rows)
                    if await page.is_disabled("#next"):
                        break
                    await page.click("#next")
                    await page.wait_for_function(
                        "first => document.querySelector('li.review')?.getAttribute('data-id') !== first",
                        arg=rows[0]["id"] if rows else None,
                    )
                await ctx.save_session(await context.storage_state())
                return {"reviews": count, "shop": await page.text_content("#shop"), "signedIn": signed_in}
            finally:
                await browser.close()

    return handler


if __name__ == "__main__":
    Worker(
        os.environ.get("FERRY_URL", "http://127.0.0.1:7878"),
        token=os.environ.get("FERRY_WORKER_TOKEN", ""),
        handlers={"demo.reviews": reviews_handler(os.environ.get("DEMO_PASSWORD", ""))},
    ).run_forever()

// A worker running Playwright code (playwright-core with Debian's Chromium) for
// `demo.reviews` jobs: it signs in to the demo site (`ferry demo --site-only`) once, keeps
// the login as a Ferry session (`save_session`, sealed by the server), and later jobs start
// from it (`use_session`) without the password. Each page of reviews goes to the job as rows.
//
//   FERRY_URL=… FERRY_WORKER_TOKEN=… DEMO_PASSWORD=ferry-demo node playwright-reviews.js
// and jobs like {"kind": "demo.reviews", "payload": {"site": "http://127.0.0.1:PORT",
// "use_session": "demo-shop", "save_session": "demo-shop"}}.
import { type BrowserContextOptions, chromium } from "playwright-core";

import { type Handler, JobError, Worker } from "../src/index.js";

interface Review {
  id: string;
  author: string;
  stars: number;
  text: string;
}

export function reviewsHandler(options: { chromium?: string; password: string }): Handler {
  return async (job, ctx) => {
    const { site } = job.payload as { site: string };
    const browser = await chromium.launch({
      executablePath: options.chromium ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    });
    const stop = () => void browser.close();
    ctx.signal.addEventListener("abort", stop, { once: true });
    try {
      const saved = (await ctx.loadSession()) as BrowserContextOptions["storageState"] | null;
      const context = await browser.newContext(saved ? { storageState: saved } : {});
      const page = await context.newPage();
      await page.goto(`${site}/site/account/reviews`);
      let signedIn = "with the saved session";
      if (page.url().endsWith("/site/login")) {
        await page.fill("#user", "demo");
        await page.fill("#password", options.password);
        await page.click("#sign-in");
        // The account page (#who), or the login page again with its error.
        await page.waitForSelector("#who, #error");
        if (await page.isVisible("#error")) throw new JobError("LOGIN_FAILED", "the site refused the login", { retryable: false });
        await page.goto(`${site}/site/account/reviews`);
        signedIn = "with the password";
      }
      let count = 0;
      for (;;) {
        await page.waitForSelector("li.review");
        const rows: Review[] = await page.$$eval("li.review", (items) =>
          items.map((li) => ({
            id: (li as HTMLElement).dataset.id ?? "",
            author: (li.querySelector(".author")?.textContent ?? "").replace(/^by /, ""),
            stars: Number.parseInt(li.querySelector(".stars")?.textContent ?? "0", 10),
            text: li.querySelector(".text")?.textContent ?? "",
          })),
        );
        await ctx.items(rows);
        count += rows.length;
        if (await page.isDisabled("#next")) break;
        await page.click("#next");
        await page.waitForFunction(
          (first) => document.querySelector("li.review")?.getAttribute("data-id") !== first,
          rows[0]?.id,
        );
      }
      await ctx.saveSession(await context.storageState());
      return { reviews: count, shop: await page.textContent("#shop"), signedIn };
    } finally {
      ctx.signal.removeEventListener("abort", stop);
      await browser.close();
    }
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await new Worker({
    server: process.env.FERRY_URL ?? "http://127.0.0.1:7878",
    token: process.env.FERRY_WORKER_TOKEN ?? "",
    handlers: { "demo.reviews": reviewsHandler({ password: process.env.DEMO_PASSWORD ?? "" }) },
  }).run();
}

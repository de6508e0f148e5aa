// A worker on your laptop (behind NAT is fine: it only calls out) running your own code for
// `reviews.sync` jobs: `node laptop-worker.js` with FERRY_URL and FERRY_WORKER_TOKEN set.
// Stops gracefully on Ctrl-C or SIGTERM.
import { JobError, Worker } from "../src/index.js";

const worker = new Worker({
  server: process.env.FERRY_URL ?? "http://127.0.0.1:7878",
  token: process.env.FERRY_WORKER_TOKEN ?? "",
  concurrency: 2,
  handlers: {
    "reviews.sync": async (job, ctx) => {
      const { storeId } = job.payload as { storeId: number };
      const answer = await fetch(`https://partner.example/stores/${storeId}/reviews`, { signal: ctx.signal });
      if (answer.status === 429) throw new JobError("RATE_LIMITED", "the partner asked us to slow down", { retryAfterMs: 60_000 });
      const reviews = (await answer.json()) as unknown[];
      await ctx.items(reviews);
      return { storeId, reviews: reviews.length };
    },
  },
});
await worker.run();

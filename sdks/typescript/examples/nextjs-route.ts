// A Next.js route handler (app/api/reviews/sync/route.ts) that hands the work to Ferry and
// answers 202 at once. FERRY_URL and FERRY_API_KEY come from the app's environment.
import { Ferry, FerryError } from "../src/index.js";

const ferry = new Ferry({ server: process.env.FERRY_URL ?? "http://127.0.0.1:7878", token: process.env.FERRY_API_KEY ?? "" });

export async function POST(request: Request): Promise<Response> {
  const { storeId } = (await request.json()) as { storeId: number };
  try {
    const job = await ferry.submit({
      kind: "reviews.sync",
      payload: { storeId },
      dedupe_key: `reviews-${storeId}`,
    });
    return Response.json({ jobId: job.id, status: job.status }, { status: 202 });
  } catch (e) {
    if (e instanceof FerryError && e.status < 500) {
      return Response.json({ error: e.code, message: e.message }, { status: 400 });
    }
    throw e;
  }
}

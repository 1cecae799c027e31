/**
 * Backpressure: the queue is bounded in tokens. Past --max-queued-tokens new scoring requests get
 * 429 with a Retry-After estimated from the drain rate, quickly; the accepted ones all succeed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Admission } from "../../src/server/admission.js";
import { RateLimitError } from "../../src/server/errors.js";
import { errorOf, hardenedApp, post } from "./harness.js";

test("admission: fits under the bound, refuses past it, admits an oversized request only into an empty queue", () => {
  let queued = 0;
  let now = 0;
  const admission = new Admission({ maxQueuedTokens: 100, queuedTokens: () => queued, now: () => now });
  admission.admit(500); // empty queue: admitted, or it could never run
  queued = 60;
  admission.admit(40);
  assert.throws(() => admission.admit(41), RateLimitError);
  // Retry-After: 1 s before any drain was measured, then the excess over the recent drain rate.
  try {
    admission.admit(41);
  } catch (error) {
    assert.equal((error as RateLimitError).retryAfterSeconds, 1);
  }
  for (let i = 0; i < 10; i++) {
    now += 1000;
    admission.completed(10); // 10 tokens per second
  }
  queued = 100;
  try {
    admission.admit(50);
    assert.fail("admitted");
  } catch (error) {
    // 50 tokens over the bound at ~10 tokens/s: about 5 s.
    const seconds = (error as RateLimitError).retryAfterSeconds;
    assert.ok(seconds >= 4 && seconds <= 6, `Retry-After ${seconds}`);
  }
  now += 60_000; // the window forgets old completions
  assert.equal(admission.drainRate(), null);
  assert.equal(admission.rejected, 3);
});

test("overload: 10x the queue bound at once gets 429s quickly while every accepted request succeeds", async () => {
  const { app, scheduler, backend } = await hardenedApp({ lanes: 2, delayMs: 5, maxQueuedTokens: 400 });
  // Each request is 4 pairs of about 20 tokens: 80 tokens, so about 5 fit in the queue.
  const body = (i: number) => ({ query: `query ${i}`, documents: ["alpha", "beta", "gamma", "delta"] });
  const results = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const started = performance.now();
      const r = await post(app, "/v1/rerank", body(i));
      return { ...r, ms: performance.now() - started };
    }),
  );
  const ok = results.filter((r) => r.status === 200);
  const limited = results.filter((r) => r.status === 429);
  assert.equal(ok.length + limited.length, results.length, `statuses: ${[...new Set(results.map((r) => r.status))]}`);
  assert.ok(limited.length >= 30, `${limited.length} of 50 got 429`);
  assert.ok(ok.length >= 4, `${ok.length} of 50 were accepted`);
  for (const r of limited) {
    const e = errorOf(r);
    assert.equal(e.type, "RateLimitError");
    assert.match(e.message, /--max-queued-tokens/);
    const retryAfter = Number(r.headers["retry-after"]);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${r.headers["retry-after"]}`);
  }
  // A 429 costs no evaluation: it is answered before anything is queued, faster than the work.
  const slowestOk = Math.max(...ok.map((r) => r.ms));
  const median429 = limited.map((r) => r.ms).sort((a, b) => a - b)[Math.floor(limited.length / 2)];
  assert.ok(median429 < slowestOk, `median 429 in ${median429} ms, slowest success ${slowestOk} ms`);
  assert.equal(backend.calls.length, ok.length * 4);
  for (const r of ok) assert.equal((r.body.results as unknown[]).length, 4);
  await scheduler.idle();
  assert.equal(scheduler.stats().queuedTokens, 0);
  // Once drained, requests are accepted again.
  assert.equal((await post(app, "/v1/rerank", body(99))).status, 200);
  const metrics = (await app.inject({ method: "GET", url: "/metrics" })).body;
  assert.match(metrics, new RegExp(`rerankd_requests_rejected_total\\{reason="queue_full"\\} ${limited.length}`));
});

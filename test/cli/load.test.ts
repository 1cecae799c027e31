/**
 * Bounded loopback load on the real CLI serving the tiny Gemma fixture (the `npm test` size; the
 * larger figures of docs/RELIABILITY.md come from `npm run soak`, same driver):
 *  - steady load at concurrency 64: every request answered 200 with the right scores, and RSS after
 *    the third round within 10% of after the first (after a warm-up round: V8 grows its heap to its
 *    working size first);
 *  - overload at 10x what the queue bound holds: quick 429s, and every accepted request succeeds.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { buildTinyGemma, type TinyGemma } from "../support/tiny-gemma.js";
import { postJson, startCliServer } from "../support/cli-server.js";
import { LOAD_DOCUMENTS, LOAD_QUERIES, metric, overloadRerankLoad, rerankRequestTokens, rssMiB, runLoad, steadyRerankLoad } from "./load-driver.js";

const BASE = ["--threads", "1", "--max-num-seqs", "4"];
const ROUND = Number(process.env.RERANKD_LOAD_ROUND ?? 1500);
// A fresh process grows its heaps (V8 and malloc) to a working size over its first few thousand
// requests; leaks show as growth after that, which is what the three rounds measure.
const WARMUP = Number(process.env.RERANKD_LOAD_WARMUP ?? 4500);

let model: TinyGemma;
before(async () => {
  model = await buildTinyGemma();
});

test(`steady load: ${WARMUP} warm-up requests, then 3 rounds of ${ROUND} requests at concurrency 64, no failure, no wrong score, RSS stable`, async () => {
  const server = await startCliServer([model.path, ...BASE]);
  try {
    const options = await steadyRerankLoad(server.url, 300_000);
    const pid = server.process.pid as number;
    const warm = await runLoad({ ...options, total: WARMUP });
    const warmRss = rssMiB(pid);
    assert.equal(warm.errors, 0, warm.firstError);
    const rounds = [];
    for (let round = 0; round < 3; round++) rounds.push(await runLoad({ ...options, total: ROUND, rssPid: pid }));
    const rss = rounds.map((r) => r.rss as { mean: number; max: number; end: number });
    console.log(JSON.stringify({ warmup: { sent: warm.sent, rps: warm.requestsPerSecond, rssMiB: warmRss }, rounds: rounds.map((r) => ({ sent: r.sent, statuses: r.statuses, rps: r.requestsPerSecond, p50: r.latency["200"]?.p50, p99: r.latency["200"]?.p99, rssMiB: r.rss })) }));
    for (const r of rounds) {
      assert.equal(r.sent, ROUND);
      assert.deepEqual(r.statuses, { "200": ROUND });
      assert.equal(r.errors, 0, r.firstError);
      assert.equal(r.wrong, 0);
    }
    // RSS is compared as the mean of samples taken every 250 ms through each round: a single reading
    // at a round's end moves by +-30 MiB with where V8's collector happens to be.
    const growth = rss[2].mean / rss[0].mean - 1;
    assert.ok(growth < 0.1, `RSS grew ${(growth * 100).toFixed(1)}% from round 1 (mean ${rss[0].mean} MiB) to round 3 (mean ${rss[2].mean} MiB)`);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(metric(text, "rerankd_queue_tokens"), 0);
    assert.ok(metric(text, "rerankd_request_queue_seconds_count") >= 3 * ROUND);
    assert.ok(metric(text, "rerankd_batch_size_count") > 0);
  } finally {
    await server.stop();
  }
});

test("overload: 10x the queue bound at once gets quick 429s with Retry-After while every accepted request succeeds", async () => {
  // A 3-document request is about 3 x 60 tokens: about 11 requests fit under 2000 queued tokens.
  const server = await startCliServer([model.path, ...BASE, "--max-queued-tokens", "2000"]);
  try {
    const perRequest = await rerankRequestTokens(server.url);
    const fits = Math.floor(2000 / perRequest);
    const concurrency = 10 * fits;
    const result = await runLoad(overloadRerankLoad(server.url, { total: 20 * concurrency, concurrency, deadlineMs: 120_000 }));
    console.log(JSON.stringify({ perRequestTokens: perRequest, fits, concurrency, ...result }));
    assert.equal(result.errors, 0, result.firstError);
    assert.equal(result.wrong, 0);
    assert.deepEqual(Object.keys(result.statuses).sort(), ["200", "429"]);
    assert.ok(result.statuses["429"] > result.sent / 4, JSON.stringify(result.statuses));
    assert.ok(result.statuses["200"] > 0);
    assert.ok(result.latency["429"].p50 < result.latency["200"].p50, JSON.stringify(result.latency));
    const limited = await postJson(`${server.url}/v1/rerank`, { query: LOAD_QUERIES[0], documents: LOAD_DOCUMENTS });
    assert.equal(limited.status, 200, "after the burst, requests are accepted again");
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(metric(text, 'rerankd_requests_rejected_total{reason="queue_full"}'), result.statuses["429"]);
    assert.equal(metric(text, "rerankd_queue_tokens"), 0);
  } finally {
    await server.stop();
  }
});

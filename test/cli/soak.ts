/**
 * `npm run soak`: the large figures of docs/RELIABILITY.md, outside `npm test` (minutes, not
 * seconds). Starts the real CLI on the tiny Gemma fixture, then on 127.0.0.1 only:
 *   1. a warm-up of SOAK_WARMUP requests, then 3 rounds of SOAK_ROUND at concurrency 64 (defaults
 *      5,000 + 3 x 5,000 = 20,000 requests): statuses, wrong answers, throughput, latency, and RSS
 *      after each round;
 *   2. overload at 10x what --max-queued-tokens holds: 429s vs successes and their latencies.
 * Every run is bounded in count and in time (SOAK_DEADLINE_S per round, default 600).
 *   npm run soak                      (SOAK_ROUND=20000 for 3 x 20,000)
 */
import { buildTinyGemma } from "../support/tiny-gemma.js";
import { postJson, startCliServer } from "../support/cli-server.js";
import { rssMiB, runLoad } from "./load-driver.js";

const ROUND = Number(process.env.SOAK_ROUND ?? 5000);
const WARMUP = Number(process.env.SOAK_WARMUP ?? 5000);
const DEADLINE_MS = Number(process.env.SOAK_DEADLINE_S ?? 600) * 1000;
const DOCS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "Paris is the capital of France."];
const QUERIES = Array.from({ length: 20 }, (_, i) => `What is fact number ${i}?`);
type Rerank = { results: Array<{ index: number; relevance_score: number }>; usage: { prompt_tokens: number } };

const model = await buildTinyGemma();
const server = await startCliServer([model.path, "--threads", "1", "--max-num-seqs", "4"]);
const pid = server.process.pid as number;
try {
  const expected = new Map<number, Map<number, number>>();
  for (let q = 0; q < QUERIES.length; q++) {
    const r = await postJson(`${server.url}/v1/rerank`, { query: QUERIES[q], documents: DOCS });
    expected.set(q, new Map((r.json as Rerank).results.map((x) => [x.index, x.relevance_score])));
  }
  const options = {
    url: server.url,
    path: "/v1/rerank",
    body: (i: number) => ({ query: QUERIES[i % QUERIES.length], documents: DOCS, user: `user-${i % 5}` }),
    concurrency: 64,
    deadlineMs: DEADLINE_MS,
    check: (i: number, body: unknown) => {
      const results = (body as Rerank).results;
      const want = expected.get(i % QUERIES.length) as Map<number, number>;
      return results.length === 3 && results.every((r) => Math.abs(r.relevance_score - (want.get(r.index) as number)) < 1e-4);
    },
  };
  const startRss = rssMiB(pid);
  const warm = await runLoad({ ...options, total: WARMUP });
  console.log(JSON.stringify({ phase: "warmup", startRssMiB: startRss, sent: warm.sent, statuses: warm.statuses, errors: warm.errors, rps: warm.requestsPerSecond, rssMiB: rssMiB(pid) }));
  const rss: Array<{ mean: number; max: number; end: number; samples: number }> = [];
  for (let round = 1; round <= 3; round++) {
    const r = await runLoad({ ...options, total: ROUND, rssPid: pid });
    rss.push(r.rss as { mean: number; max: number; end: number; samples: number });
    console.log(JSON.stringify({ phase: `round ${round}`, sent: r.sent, statuses: r.statuses, errors: r.errors, wrong: r.wrong, seconds: Math.round(r.seconds), rps: r.requestsPerSecond, latency: r.latency, rssMiB: r.rss }));
  }
  const pct = (a: number, b: number) => Math.round((b / a - 1) * 1000) / 10;
  console.log(JSON.stringify({ phase: "rss growth round 1 to 3 (%)", end: pct(rss[0].end, rss[2].end), mean: pct(rss[0].mean, rss[2].mean), max: pct(rss[0].max, rss[2].max) }));
} finally {
  await server.stop();
}

const bound = 2000;
const overloaded = await startCliServer([model.path, "--threads", "1", "--max-num-seqs", "4", "--max-queued-tokens", String(bound)]);
try {
  const one = await postJson(`${overloaded.url}/v1/rerank`, { query: QUERIES[0], documents: DOCS });
  const perRequest = (one.json as Rerank).usage.prompt_tokens;
  const concurrency = 10 * Math.floor(bound / perRequest);
  const r = await runLoad({
    url: overloaded.url,
    path: "/v1/rerank",
    body: (i) => ({ query: QUERIES[i % QUERIES.length], documents: DOCS }),
    total: 50 * concurrency,
    concurrency,
    deadlineMs: DEADLINE_MS,
    check: (_i, body) => (body as Rerank).results.length === 3,
  });
  console.log(JSON.stringify({ phase: "overload", maxQueuedTokens: bound, perRequestTokens: perRequest, concurrency, sent: r.sent, statuses: r.statuses, errors: r.errors, wrong: r.wrong, seconds: Math.round(r.seconds), latency: r.latency }));
} finally {
  await overloaded.stop();
}

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
import { startCliServer } from "../support/cli-server.js";
import { overloadRerankLoad, rerankRequestTokens, rssMiB, runLoad, steadyRerankLoad } from "./load-driver.js";

const ROUND = Number(process.env.SOAK_ROUND ?? 5000);
const WARMUP = Number(process.env.SOAK_WARMUP ?? 5000);
const DEADLINE_MS = Number(process.env.SOAK_DEADLINE_S ?? 600) * 1000;

const model = await buildTinyGemma();
const server = await startCliServer([model.path, "--threads", "1", "--max-num-seqs", "4"]);
const pid = server.process.pid as number;
try {
  const options = await steadyRerankLoad(server.url, DEADLINE_MS);
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
  const perRequest = await rerankRequestTokens(overloaded.url);
  const concurrency = 10 * Math.floor(bound / perRequest);
  const r = await runLoad(overloadRerankLoad(overloaded.url, { total: 50 * concurrency, concurrency, deadlineMs: DEADLINE_MS }));
  console.log(JSON.stringify({ phase: "overload", maxQueuedTokens: bound, perRequestTokens: perRequest, concurrency, sent: r.sent, statuses: r.statuses, errors: r.errors, wrong: r.wrong, seconds: Math.round(r.seconds), latency: r.latency }));
} finally {
  await overloaded.stop();
}

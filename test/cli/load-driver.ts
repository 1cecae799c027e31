/**
 * A bounded loopback load generator (undici Pool): sends exactly `total` requests to one server
 * with at most `concurrency` in flight, stops at `deadlineMs` whatever happens, and counts statuses
 * and latencies. Used by test/cli/load.test.ts (a bounded run in `npm test`) and test/cli/soak.ts
 * (the larger figures of docs/RELIABILITY.md). Only ever aimed at 127.0.0.1.
 */
import { readFileSync } from "node:fs";
import { Pool } from "undici";
import { postJson, rerankScores } from "../support/cli-server.js";

export interface LoadOptions {
  /** Base URL of the server, http://127.0.0.1:PORT. */
  url: string;
  path: string;
  /** The JSON body of request i. */
  body: (i: number) => unknown;
  total: number;
  concurrency: number;
  /** Hard stop: requests not sent by then are not sent. */
  deadlineMs: number;
  /** Checks a 200's parsed body for request i; a false return counts as a wrong answer. */
  check?: (i: number, body: unknown) => boolean;
  /** Sample this process's RSS every 250 ms while the load runs. */
  rssPid?: number;
}

export interface LoadResult {
  sent: number;
  statuses: Record<string, number>;
  /** Connection errors, timeouts, unparsable bodies. */
  errors: number;
  wrong: number;
  seconds: number;
  requestsPerSecond: number;
  /** Latency percentiles in milliseconds, per status. */
  latency: Record<string, { p50: number; p99: number; max: number }>;
  firstError?: string;
  /** With rssPid: mean and peak of the RSS samples taken during the run, and RSS at its end (MiB). */
  rss?: { mean: number; max: number; end: number; samples: number };
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  if (url.hostname !== "127.0.0.1" && url.hostname !== "localhost") throw new Error("load is only sent to loopback");
  const pool = new Pool(url.origin, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 10_000 });
  const started = performance.now();
  const deadline = started + options.deadlineMs;
  const statuses: Record<string, number> = {};
  const latencies = new Map<string, number[]>();
  let next = 0;
  let errors = 0;
  let wrong = 0;
  let firstError: string | undefined;
  const samples: number[] = [];
  const sampler = options.rssPid === undefined ? null : setInterval(() => samples.push(rssMiB(options.rssPid as number)), 250);
  const worker = async () => {
    while (next < options.total && performance.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      try {
        const response = await pool.request({
          path: options.path,
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(options.body(i)),
          headersTimeout: Math.max(1000, deadline - performance.now()),
          bodyTimeout: Math.max(1000, deadline - performance.now()),
        });
        const text = await response.body.text();
        const key = String(response.statusCode);
        statuses[key] = (statuses[key] ?? 0) + 1;
        const list = latencies.get(key) ?? [];
        list.push(performance.now() - t0);
        latencies.set(key, list);
        const parsed: unknown = JSON.parse(text);
        if (response.statusCode === 200 && options.check && !options.check(i, parsed)) wrong++;
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  if (sampler) clearInterval(sampler);
  const end = options.rssPid === undefined ? null : rssMiB(options.rssPid);
  if (end !== null) samples.push(end);
  await pool.close();
  const latency: LoadResult["latency"] = {};
  for (const [key, list] of latencies) {
    list.sort((a, b) => a - b);
    const at = (q: number) => Math.round(list[Math.min(list.length - 1, Math.floor(q * list.length))] * 10) / 10;
    latency[key] = { p50: at(0.5), p99: at(0.99), max: Math.round(list[list.length - 1] * 10) / 10 };
  }
  const rss =
    end === null
      ? undefined
      : { mean: Math.round((samples.reduce((a, b) => a + b, 0) / samples.length) * 10) / 10, max: Math.max(...samples), end, samples: samples.length };
  return { sent: next, statuses, errors, wrong, seconds, requestsPerSecond: Math.round(next / seconds), latency, firstError, rss };
}

/** Resident set size of a process in MiB, from /proc (Linux). */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return Math.round((kib / 1024) * 10) / 10;
}

/** A Prometheus sample's value from /metrics text, e.g. metric(text, 'rerankd_queue_tokens'). */
export function metric(text: string, name: string): number {
  const escaped = name.replace(/[{}"()\\[\]]/g, (c) => `\\${c}`);
  const match = new RegExp(`^${escaped} ([0-9.e+-]+)$`, "m").exec(text);
  return match ? Number(match[1]) : NaN;
}

// ---------------------------------------------------------------------------
// The rerank load of load.test.ts and soak.ts: the same requests, so their figures compare.

export const LOAD_DOCUMENTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "Paris is the capital of France."];
export const LOAD_QUERIES = Array.from({ length: 20 }, (_, i) => `What is fact number ${i}?`);

type RerankAnswer = { results: Array<{ index: number; relevance_score: number }> };

/**
 * Steady load on /v1/rerank at concurrency 64, request i asking query i mod 20 as one of 5 users:
 * right when it ranks all 3 documents with the scores the server gave that query before the load
 * (within 1e-4). `total` is per run.
 */
export async function steadyRerankLoad(url: string, deadlineMs: number): Promise<Omit<LoadOptions, "total">> {
  const expected: Array<Map<number, number>> = [];
  for (const query of LOAD_QUERIES) expected.push(await rerankScores(url, { query, documents: LOAD_DOCUMENTS }));
  return {
    url,
    path: "/v1/rerank",
    body: (i) => ({ query: LOAD_QUERIES[i % LOAD_QUERIES.length], documents: LOAD_DOCUMENTS, user: `user-${i % 5}` }),
    concurrency: 64,
    deadlineMs,
    check: (i, body) => {
      const results = (body as RerankAnswer).results;
      const want = expected[i % LOAD_QUERIES.length];
      return results.length === 3 && results.every((r) => Math.abs(r.relevance_score - (want.get(r.index) as number)) < 1e-4);
    },
  };
}

/** The tokens one request of the load costs, from the server's own usage count. */
export async function rerankRequestTokens(url: string): Promise<number> {
  const one = await postJson(`${url}/v1/rerank`, { query: LOAD_QUERIES[0], documents: LOAD_DOCUMENTS });
  return (one.json as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
}

/** Overload: the same requests, each counted right when it ranks all 3 documents (429s are expected). */
export function overloadRerankLoad(url: string, options: { total: number; concurrency: number; deadlineMs: number }): LoadOptions {
  return {
    url,
    path: "/v1/rerank",
    body: (i) => ({ query: LOAD_QUERIES[i % LOAD_QUERIES.length], documents: LOAD_DOCUMENTS }),
    ...options,
    check: (_i, body) => (body as RerankAnswer).results.length === 3,
  };
}

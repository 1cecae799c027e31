/**
 * Faults against the real CLI on the tiny Gemma fixture (real llama.cpp): an engine error
 * injected mid-batch (RERANKD_FAULT_INJECT), a missing or corrupt model at start, a client that
 * disconnects mid-request, a request past its deadline, SIGTERM with requests in flight, and a
 * second signal.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildTinyGemma, type TinyGemma } from "../support/tiny-gemma.js";
import { postJson, startCliServer } from "../support/cli-server.js";
import { referenceRawScore, scoreTolerance } from "../support/reference-pairs.js";
import { metric, runLoad } from "./load-driver.js";

const repo = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
// One llama.cpp thread: on a shared 2-core machine a spinning second thread slows everything.
const BASE = ["--threads", "1", "--max-num-seqs", "4"];
const DOCS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "Paris is the capital of France."];

let model: TinyGemma;
before(async () => {
  model = await buildTinyGemma();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const metrics = async (url: string) => (await fetch(`${url}/metrics`)).text();

test("an engine error mid-batch fails only the requests in that batch (500); the engine recovers and the next request succeeds", async () => {
  const server = await startCliServer([model.path, ...BASE], { env: { RERANKD_FAULT_INJECT: "evaluate:every=25" } });
  try {
    assert.match(server.output(), /TESTING AID: RERANKD_FAULT_INJECT/);
    const queries = ["What is the capital of China?", "Explain gravity", "Where is Paris?"];
    const expected = queries.map((q) => DOCS.map((d) => 1 / (1 + Math.exp(-referenceRawScore(model, q, d)))));
    // Sequential: each request's 3 pairs are one batch; every 25th evaluation is made to fail.
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const q = i % queries.length;
      const r = await postJson(`${server.url}/v1/score`, { queries: queries[q], documents: DOCS });
      statuses.push(r.status);
      if (r.status === 500) {
        const error = (r.json as { error: { type: string; message: string; code: number } }).error;
        assert.equal(error.type, "InternalServerError");
        assert.equal(error.code, 500);
        assert.doesNotMatch(error.message, /invalid token|injected|llama/i);
      } else {
        assert.equal(r.status, 200, JSON.stringify(r.json));
        const scores = (r.json as { data: Array<{ score: number }> }).data.map((d) => d.score);
        scores.forEach((s, k) => assert.ok(Math.abs(s - expected[q][k]) <= scoreTolerance(expected[q][k]), `score ${s} vs reference ${expected[q][k]}`));
      }
    }
    const failures = statuses.filter((s) => s === 500).length;
    // 150 evaluations, every 25th failed: 6 faults, each failing one request (its batch) and no other.
    assert.equal(failures, 6, `statuses ${statuses.join(",")}`);
    statuses.forEach((s, i) => {
      if (s === 500 && i + 1 < statuses.length) assert.equal(statuses[i + 1], 200, `request after a failure: ${statuses.join(",")}`);
    });
    // Concurrent (8 requests in flight, their pairs interleaved on 4 lanes): a failed batch fails
    // every request with a pair in it; all the others are answered, with the reference scores.
    const load = await runLoad({
      url: server.url,
      path: "/v1/rerank",
      body: (i) => ({ query: queries[i % 3], documents: DOCS }),
      total: 120,
      concurrency: 8,
      deadlineMs: 60_000,
      check: (i, body) =>
        (body as { results: Array<{ index: number; relevance_score: number }> }).results.every((r) => {
          const want = expected[i % 3][r.index];
          return Math.abs(r.relevance_score - want) <= scoreTolerance(want);
        }),
    });
    console.log(JSON.stringify({ sequential: statuses.map((s) => (s === 200 ? "." : "X")).join(""), sequentialFailures: failures, concurrent: load.statuses, errors: load.errors }));
    assert.equal(load.errors, 0, load.firstError);
    assert.deepEqual(Object.keys(load.statuses).sort(), ["200", "500"]);
    assert.ok(load.statuses["200"] > 0);
    assert.equal(load.wrong, 0, "every request answered 200 has the reference scores");
    const text = await metrics(server.url);
    assert.ok(metric(text, 'rerankd_pairs_total{outcome="failed"}') >= failures);
    assert.equal(metric(text, "rerankd_queue_tokens"), 0);
    const ok = await postJson(`${server.url}/v1/rerank`, { query: "What is the capital of China?", documents: ["Beijing."] });
    assert.ok(ok.status === 200 || ok.status === 500);
    assert.equal(server.process.exitCode, null, "the server is still running");
  } finally {
    await server.stop();
  }
});

async function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string; ms: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, ["--import", "tsx", path.join(repo, "src/cli/main.ts"), "serve", ...args, "--host", "127.0.0.1", "--port", "0", "--log-level", "warn"], {
    cwd: repo,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  return { code, output, ms: performance.now() - started };
}

test("a missing, truncated or corrupt model file: one clear error and exit code 1, not a hang", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "rerankd-bad-model-"));
  const bytes = readFileSync(model.path);
  const truncated = path.join(dir, "truncated.gguf");
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 3)));
  const garbage = path.join(dir, "garbage.gguf");
  writeFileSync(garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) & 0xff)));
  const empty = path.join(dir, "empty.gguf");
  writeFileSync(empty, "");
  const cases: Array<[string, RegExp]> = [
    [path.join(dir, "vanished.gguf"), /model file not found/],
    [truncated, /Failed to load model.*(corrupted or incomplete|not within the file bounds)/],
    [garbage, /GGUF|magic/i],
    [empty, /GGUF|magic/i],
  ];
  for (const [file, reason] of cases) {
    const { code, output, ms } = await runCli([file, "--threads", "1"], 60_000);
    assert.equal(code, 1, `${file}: exit ${code}\n${output}`);
    const errorLines = output.split("\n").filter((l) => l.startsWith("rerankd: cannot serve"));
    assert.equal(errorLines.length, 1, output);
    assert.match(errorLines[0], reason);
    assert.ok(ms < 30_000, `${file}: took ${ms} ms`);
  }
});

test("a client that disconnects mid-request has its queued work dropped; the server serves the next request", async () => {
  const server = await startCliServer([model.path, ...BASE]);
  try {
    const documents = Array.from({ length: 1000 }, (_, i) => `Document number ${i} talks about topic ${i % 17} at some length.`);
    const before = metric(await metrics(server.url), "rerankd_evaluated_tokens_total");
    const controller = new AbortController();
    const pending = fetch(`${server.url}/v1/rerank`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "Which document is about topic 3?", documents }),
      signal: controller.signal,
    }).catch((error: unknown) => error);
    // Wait until the request is being evaluated, then hang up.
    for (let i = 0; i < 200 && metric(await metrics(server.url), "rerankd_queue_tokens") === 0; i++) await sleep(10);
    controller.abort();
    assert.ok((await pending) instanceof Error);
    let text = "";
    for (let i = 0; i < 100; i++) {
      text = await metrics(server.url);
      if (metric(text, "rerankd_queue_tokens") === 0 && metric(text, "rerankd_running_sequences") === 0) break;
      await sleep(20);
    }
    assert.equal(metric(text, "rerankd_queue_tokens"), 0);
    assert.equal(metric(text, "rerankd_queue_requests"), 0);
    assert.equal(metric(text, 'rerankd_requests_rejected_total{reason="client_closed"}'), 1);
    const evaluated = metric(text, "rerankd_evaluated_tokens_total") - before;
    // The whole request is about 1000 pairs of ~60 tokens; most of it was never evaluated.
    assert.ok(evaluated < 30_000, `${evaluated} tokens were evaluated for the abandoned request`);
    const next = await postJson(`${server.url}/v1/rerank`, { query: "What is the capital of China?", documents: DOCS });
    assert.equal(next.status, 200);
  } finally {
    await server.stop();
  }
});

test("--request-timeout: a request past its deadline gets 504 and its queued pairs are dropped", async () => {
  const server = await startCliServer([model.path, ...BASE, "--request-timeout", "0.2"]);
  try {
    const documents = Array.from({ length: 1000 }, (_, i) => `Document number ${i} talks about topic ${i % 17} at some length.`);
    const started = performance.now();
    const r = await postJson(`${server.url}/v1/rerank`, { query: "Which document is about topic 3?", documents });
    const ms = performance.now() - started;
    assert.equal(r.status, 504, JSON.stringify(r.json));
    assert.equal((r.json as { error: { type: string } }).error.type, "TimeoutError");
    assert.ok(ms < 10_000, `answered after ${ms} ms`);
    await sleep(200);
    assert.equal(metric(await metrics(server.url), "rerankd_queue_tokens"), 0);
    assert.equal((await postJson(`${server.url}/v1/rerank`, { query: "q", documents: DOCS })).status, 200);
  } finally {
    await server.stop();
  }
});

test("SIGTERM with requests in flight: they all complete, /health and new work get 503 while draining, exit 0", async () => {
  const server = await startCliServer([model.path, ...BASE, "--shutdown-timeout", "60"]);
  const documents = Array.from({ length: 60 }, (_, i) => `Passage ${i} about subject ${i % 11}.`);
  const inFlight = Array.from({ length: 12 }, (_, i) => postJson(`${server.url}/v1/rerank`, { query: `query ${i}`, documents }));
  for (let i = 0; i < 200 && metric(await metrics(server.url), "rerankd_queue_requests") < 12; i++) await sleep(10);
  const exited = new Promise<number | null>((resolve) => server.process.once("exit", (code) => resolve(code)));
  server.process.kill("SIGTERM");
  await sleep(100);
  const health = await fetch(`${server.url}/health`).catch((error: unknown) => error);
  const refused = await postJson(`${server.url}/v1/rerank`, { query: "late", documents: DOCS }).catch((error: unknown) => error);
  const results = await Promise.all(inFlight);
  for (const r of results) {
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal((r.json as { results: unknown[] }).results.length, 60);
  }
  // Sent while draining (720 pairs take well over the 100 ms waited): answered 503, not refused.
  assert.ok(!(health instanceof Error), `GET /health while draining: ${String(health)}`);
  assert.equal((health as Response).status, 503);
  assert.ok(!(refused instanceof Error), `POST while draining: ${String(refused)}`);
  assert.equal((refused as { status: number; json: { error: { type: string } } }).status, 503);
  assert.equal((refused as { json: { error: { type: string } } }).json.error.type, "ServiceUnavailableError");
  assert.equal(await exited, 0, server.output());
  assert.match(server.output(), /draining/);
});

test("a second signal exits at once, without waiting for the drain", async () => {
  const server = await startCliServer([model.path, ...BASE, "--shutdown-timeout", "120"]);
  const documents = Array.from({ length: 1000 }, (_, i) => `Passage ${i} about subject ${i % 11}.`);
  const pending = Array.from({ length: 4 }, (_, i) => postJson(`${server.url}/v1/rerank`, { query: `query ${i}`, documents }).catch((error: unknown) => error));
  for (let i = 0; i < 200 && metric(await metrics(server.url), "rerankd_queue_requests") < 4; i++) await sleep(10);
  const exited = new Promise<number | null>((resolve) => server.process.once("exit", (code) => resolve(code)));
  server.process.kill("SIGINT");
  await sleep(200);
  const started = performance.now();
  server.process.kill("SIGINT");
  const code = await exited;
  assert.equal(code, 130, server.output());
  assert.ok(performance.now() - started < 5000);
  assert.match(server.output(), /again: exiting now/);
  await Promise.all(pending);
});

/**
 * Per-request limits: documents, pairs, characters, detokenize ids, body size, and the request
 * deadline (504, with the request's queued work dropped from the scheduler).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkBodyLimits, DEFAULT_LIMITS } from "../../src/server/limits.js";
import { BadRequestError } from "../../src/server/errors.js";
import { errorOf, hardenedApp, post } from "./harness.js";

const limits = { maxDocuments: 5, maxPairs: 3, maxChars: 50, requestTimeoutMs: 0 };

test("documents per rerank request, pairs per score request, characters per text: a 400 naming the field and the flag", async () => {
  const { app } = await hardenedApp({ limits });
  const docs = (n: number) => Array.from({ length: n }, (_, i) => `d${i}`);
  assert.equal((await post(app, "/v1/rerank", { query: "q", documents: docs(5) })).status, 200);
  let e = errorOf(await post(app, "/v1/rerank", { query: "q", documents: docs(6) }));
  assert.equal(e.code, 400);
  assert.equal(e.param, "documents");
  assert.match(e.message, /6 items.*at most 5 documents.*--max-documents/);
  for (const url of ["/rerank", "/v2/rerank"]) assert.equal((await post(app, url, { query: "q", documents: docs(6) })).status, 400);

  assert.equal((await post(app, "/v1/score", { queries: "q", documents: docs(3) })).status, 200);
  e = errorOf(await post(app, "/v1/score", { queries: "q", documents: docs(4) }));
  assert.equal(e.param, "documents");
  assert.match(e.message, /--max-pairs/);
  e = errorOf(await post(app, "/score", { text_1: docs(4), text_2: docs(4) }));
  assert.equal(e.param, "text_1");

  e = errorOf(await post(app, "/v1/rerank", { query: "x".repeat(51), documents: ["a"] }));
  assert.equal(e.param, "query");
  assert.match(e.message, /51 characters.*at most 50.*--max-chars/);
  e = errorOf(await post(app, "/v1/rerank", { query: "q", documents: ["a", { text: "y".repeat(51) }] }));
  assert.equal(e.param, "documents");
  assert.match(e.message, /`documents\[1\]`/);
  e = errorOf(await post(app, "/v1/score", { queries: "z".repeat(51), documents: "d" }));
  assert.equal(e.param, "queries");
  e = errorOf(await post(app, "/tokenize", { prompt: "p".repeat(51) }));
  assert.equal(e.param, "prompt");
  e = errorOf(await post(app, "/detokenize", { tokens: Array.from({ length: 51 }, () => 97) }));
  assert.equal(e.param, "tokens");
  // The text itself is never echoed in the error.
  assert.doesNotMatch(e.message, /yyyy/);
});

test("a million empty strings are refused by their count, before validation touches each one", async () => {
  const { app } = await hardenedApp({ maxBodyBytes: 16 << 20 });
  const body = `{"query":"q","documents":[${'"",'.repeat(999_999)}""]}`;
  const started = performance.now();
  const e = errorOf(await post(app, "/v1/rerank", body));
  assert.equal(e.code, 400);
  assert.match(e.message, /1000000 items/);
  assert.ok(performance.now() - started < 10_000);
});

test("wrong types are left to the schema's message; non-object bodies pass through untouched", () => {
  assert.doesNotThrow(() => checkBodyLimits([1, 2, 3], "/v1/rerank", DEFAULT_LIMITS));
  assert.doesNotThrow(() => checkBodyLimits({ query: 5, documents: "x" }, "/v1/rerank", DEFAULT_LIMITS));
  assert.throws(() => checkBodyLimits({ texts: new Array(1001).fill("") }, "/rerank", DEFAULT_LIMITS), BadRequestError);
});

test("body over --max-body-bytes: 413 PayloadTooLargeError", async () => {
  const { app } = await hardenedApp({ maxBodyBytes: 4096 });
  const e = errorOf(await post(app, "/v1/rerank", { query: "q", documents: ["x".repeat(5000)] }));
  assert.equal(e.code, 413);
  assert.equal(e.type, "PayloadTooLargeError");
});

test("request deadline: 504 TimeoutError, the request's queued pairs leave the queue, the next request is served", async () => {
  const { app, backend, scheduler, metrics } = await hardenedApp({
    lanes: 1,
    delayMs: 20,
    limits: { ...DEFAULT_LIMITS, requestTimeoutMs: 150 },
  });
  const documents = Array.from({ length: 100 }, (_, i) => `document ${i}`);
  const started = performance.now();
  const r = await post(app, "/v1/rerank", { query: "slow", documents });
  const elapsed = performance.now() - started;
  const e = errorOf(r);
  assert.equal(e.code, 504);
  assert.equal(e.type, "TimeoutError");
  assert.ok(elapsed < 1500, `answered after ${elapsed} ms`);
  const evaluated = backend.calls.length;
  assert.ok(evaluated < 40, `${evaluated} of 100 pairs were evaluated`);
  assert.equal(scheduler.stats().queuedPairs, 0);
  await scheduler.idle();
  assert.equal(scheduler.stats().queuedTokens, 0);
  backend.delayMs = 0;
  assert.equal((await post(app, "/v1/rerank", { query: "q", documents: ["a", "b"] })).status, 200);
  const text = (await app.inject({ method: "GET", url: "/metrics" })).body;
  assert.match(text, /rerankd_requests_rejected_total\{reason="deadline"\} 1/);
  assert.equal(metrics.inFlight, 0);
});

/**
 * Property-based fuzzing of every POST route, in-process on the fake model: arbitrary JSON,
 * arbitrary bytes (with arbitrary content types), and bodies shaped like the API with arbitrary
 * values. Every answer must be a well-formed success of the route's shape or a 4xx error of
 * API.md's shape: never a 5xx, never a crash. The counts of cases run are printed and asserted.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { errorOf, hardenedApp, type Harness } from "./harness.js";

const ROUTES = ["/v1/rerank", "/rerank", "/v2/rerank", "/v1/score", "/score", "/tokenize", "/detokenize"] as const;
const RUNS = { json: 400, bytes: 300, shaped: 800 };
const SEED = 20260601;

function checkSuccess(route: string, body: unknown): void {
  const b = body as Record<string, unknown>;
  if (route.endsWith("rerank")) {
    // vLLM's shape, or TEI's bare array when the body used `texts`.
    if (Array.isArray(body)) {
      for (const r of body as Array<Record<string, unknown>>) assert.ok(Number.isInteger(r.index) && typeof r.score === "number");
      return;
    }
    assert.match(String(b.id), /^rerank-/);
    assert.ok(Array.isArray(b.results));
    for (const r of b.results as Array<Record<string, unknown>>) assert.ok(Number.isInteger(r.index) && typeof r.relevance_score === "number");
  } else if (route.endsWith("score")) {
    assert.equal(b.object, "list");
    assert.ok(Array.isArray(b.data));
  } else if (route === "/tokenize") {
    assert.ok(Array.isArray(b.tokens) && b.count === (b.tokens as unknown[]).length);
  } else {
    assert.equal(typeof b.prompt, "string");
  }
}

const statuses = new Map<number, number>();

async function send(h: Harness, route: string, payload: string | Buffer, contentType = "application/json"): Promise<void> {
  const response = await h.app.inject({ method: "POST", url: route, payload, headers: { "content-type": contentType } });
  const status = response.statusCode;
  statuses.set(status, (statuses.get(status) ?? 0) + 1);
  let body: unknown;
  try {
    body = JSON.parse(response.body);
  } catch {
    assert.fail(`${route} answered ${status} with a body that is not JSON: ${response.body.slice(0, 200)}`);
  }
  if (status === 200) {
    checkSuccess(route, body);
    return;
  }
  assert.ok(status >= 400 && status < 500, `${route} answered ${status}: ${response.body.slice(0, 300)} for ${String(payload).slice(0, 200)}`);
  errorOf({ status, body: body as Record<string, unknown> });
}

const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 }), fc.constantFrom("", " ", "\u0000", "\ud800", "A: B:", "<bos>"));
const doc = fc.oneof(text, fc.record({ text }), fc.record({ text, extra: fc.jsonValue({ maxDepth: 2 }) }), fc.jsonValue({ maxDepth: 2 }));
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.integer(), fc.double(), fc.constantFrom(null, true, false, -1, 0, 1e308, -0, 2 ** 53 + 2));
/** Mostly a valid value, sometimes anything: so bodies get past validation often enough to reach the model. */
const mostly = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: anyValue, weight: 1 });
const optionals = {
  model: mostly(fc.constantFrom("test-model", null)),
  use_activation: mostly(fc.boolean()),
  truncate_prompt_tokens: mostly(fc.integer({ min: -1, max: 64 })),
  max_tokens_per_doc: mostly(fc.integer({ min: 0, max: 100 })),
  user: mostly(text),
  priority: mostly(fc.integer()),
  request_id: mostly(text),
  unknown_extra: anyValue,
};
const docs = fc.oneof({ arbitrary: fc.array(fc.oneof(text, fc.record({ text })), { minLength: 1, maxLength: 8 }), weight: 8 }, { arbitrary: fc.array(doc, { maxLength: 8 }), weight: 1 });
const shapedBody = fc.oneof(
  // rerank, vLLM's and TEI's forms
  fc.record(
    { query: mostly(text), documents: mostly(docs), top_n: mostly(fc.integer({ min: 0, max: 10 })), return_documents: mostly(fc.boolean()), ...optionals },
    { requiredKeys: ["query", "documents"] },
  ),
  fc.record({ query: mostly(text), texts: mostly(fc.array(text, { minLength: 1, maxLength: 6 })), raw_scores: mostly(fc.boolean()), return_text: mostly(fc.boolean()) }, { requiredKeys: ["query", "texts"] }),
  // score, in its three field pairs, 1:1, 1:N, N:N and mismatched
  fc.constantFrom(["queries", "documents"], ["text_1", "text_2"], ["data_1", "data_2"]).chain(([a, b]) =>
    fc.record({ [a]: mostly(fc.oneof(text, docs)), [b]: mostly(fc.oneof(text, docs)), ...optionals } as Record<string, fc.Arbitrary<unknown>>, { requiredKeys: [a, b] }),
  ),
  // tokenizer
  fc.record({ prompt: mostly(text), add_special_tokens: mostly(fc.boolean()), model: optionals.model }, { requiredKeys: ["prompt"] }),
  fc.record({ tokens: mostly(fc.array(fc.integer({ min: -2, max: 0x110005 }), { maxLength: 12 })), model: optionals.model }, { requiredKeys: ["tokens"] }),
  // anything at all in every field
  fc.record(
    { query: anyValue, documents: anyValue, queries: anyValue, text_1: anyValue, texts: anyValue, prompt: anyValue, tokens: anyValue, top_n: anyValue },
    { requiredKeys: [] },
  ),
);

test("fuzz: arbitrary JSON, arbitrary bytes and API-shaped bodies on every POST route: 2xx or 4xx of API.md's shape, never 5xx", async () => {
  const h = await hardenedApp({ lanes: 2, delayMs: 0, limits: { maxDocuments: 50, maxPairs: 50, maxChars: 2000, requestTimeoutMs: 10_000 } });
  const counts = { json: 0, bytes: 0, shaped: 0 };
  for (const route of ROUTES) {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        counts.json++;
        await send(h, route, JSON.stringify(value) ?? "null");
      }),
      { numRuns: RUNS.json, seed: SEED },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"),
        async (bytes, contentType) => {
          counts.bytes++;
          await send(h, route, Buffer.from(bytes), contentType);
        },
      ),
      { numRuns: RUNS.bytes, seed: SEED },
    );
    await fc.assert(
      fc.asyncProperty(shapedBody, async (body) => {
        counts.shaped++;
        await send(h, route, JSON.stringify(body));
      }),
      { numRuns: RUNS.shaped, seed: SEED },
    );
  }
  const total = counts.json + counts.bytes + counts.shaped;
  console.log(`fuzz: ${total} cases (${counts.json} arbitrary JSON, ${counts.bytes} arbitrary bytes, ${counts.shaped} API-shaped) over ${ROUTES.length} routes; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  assert.equal(total, ROUTES.length * (RUNS.json + RUNS.bytes + RUNS.shaped));
  // The shaped bodies reach the model, not only validation.
  assert.ok((statuses.get(200) ?? 0) > 500, `only ${statuses.get(200) ?? 0} successes`);
  // The server is still healthy and its queue empty.
  await h.scheduler.idle();
  assert.equal(h.scheduler.stats().queuedTokens, 0);
  assert.equal((await h.app.inject({ method: "GET", url: "/health" })).statusCode, 200);
});

/**
 * text-embeddings-inference's /rerank dialect on the rerank routes, over the deterministic fake
 * model: a body with `texts` gets TEI's bare-array answer, computed by the same scoring as vLLM's
 * shape (compared request by request), TEI's options map as documented in src/server/tei.ts, and
 * every mistake is a 400 of API.md's error shape naming TEI's own field.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fakeApp } from "../support/fake-app.js";

type App = Awaited<ReturnType<typeof fakeApp>>["app"];

async function post(app: App, url: string, payload: unknown, headers: Record<string, string> = {}) {
  const response = await app.inject({
    method: "POST",
    url,
    payload: JSON.stringify(payload),
    headers: { "content-type": "application/json", ...headers },
  });
  return { status: response.statusCode, body: response.json() as unknown };
}

interface TeiResult {
  index: number;
  score: number;
  text?: string;
}
interface VllmResponse {
  results: Array<{ index: number; relevance_score: number; document?: { text: string } }>;
}
interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}

function expectBadRequest(r: { status: number; body: unknown }, param: string, message: RegExp): void {
  assert.equal(r.status, 400, JSON.stringify(r.body));
  const { error } = r.body as ErrorBody;
  assert.deepEqual(Object.keys(error).sort(), ["code", "message", "param", "type"]);
  assert.equal(error.type, "BadRequestError");
  assert.equal(error.code, 400);
  assert.equal(error.param, param);
  assert.match(error.message, message);
}

const query = "Which city is the capital of China?";
const texts = ["Paris is the capital of France.", "The capital of China is Beijing.", "Gravity attracts bodies.", "Beijing"];

test("a body with `texts` gets TEI's answer: a bare array of {index, score}, sorted, scored as vLLM's rerank", async () => {
  const { app } = await fakeApp();
  for (const url of ["/rerank", "/v1/rerank", "/v2/rerank"]) {
    const tei = await post(app, url, { query, texts });
    assert.equal(tei.status, 200, JSON.stringify(tei.body));
    assert.ok(Array.isArray(tei.body), "a bare array");
    const results = tei.body as TeiResult[];
    const vllm = (await post(app, url, { query, documents: texts })).body as VllmResponse;
    assert.deepEqual(
      results,
      vllm.results.map((r) => ({ index: r.index, score: r.relevance_score })),
      "same scores, same order, no text by default",
    );
    for (let i = 1; i < results.length; i++) assert.ok(results[i - 1].score >= results[i].score);
  }
});

test("raw_scores: false (default) is the sigmoid, true the raw logit; return_text: true adds each text", async () => {
  const { app } = await fakeApp();
  const raw = (await post(app, "/rerank", { query, texts, raw_scores: true, return_text: true })).body as TeiResult[];
  const vllmRaw = (await post(app, "/rerank", { query, documents: texts, use_activation: false })).body as VllmResponse;
  assert.deepEqual(
    raw,
    vllmRaw.results.map((r) => ({ index: r.index, score: r.relevance_score, text: texts[r.index] })),
  );
  assert.ok(raw.some((r) => r.score > 1), "raw logits are not squashed");
  const activated = (await post(app, "/rerank", { query, texts, raw_scores: false })).body as TeiResult[];
  for (const r of activated) {
    const logit: number = (raw.find((x) => x.index === r.index) as TeiResult).score;
    assert.equal(r.score, 1 / (1 + Math.exp(-logit)));
    assert.equal(r.text, undefined);
  }
});

test("truncate: true cuts a pair too long even on a --truncation error server; false refuses it on an auto server", async () => {
  const long = "x".repeat(200);
  const strict = (await fakeApp({ truncation: "error", maxLength: 32 })).app;
  expectBadRequest(await post(strict, "/rerank", { query: "q", texts: ["short", long] }), "input_tokens", /texts\[1\]/);
  const cut = await post(strict, "/rerank", { query: "q", texts: ["short", long], truncate: true });
  assert.equal(cut.status, 200, JSON.stringify(cut.body));
  assert.equal((cut.body as TeiResult[]).length, 2);

  const lenient = (await fakeApp({ truncation: "auto", maxLength: 32 })).app;
  assert.equal((await post(lenient, "/rerank", { query: "q", texts: ["short", long] })).status, 200, "absent: the server's mode");
  expectBadRequest(await post(lenient, "/rerank", { query: "q", texts: ["short", long], truncate: false }), "input_tokens", /texts\[1\]/);
  // The truncated scores are the vLLM route's under the same server mode.
  const viaTei = (await post(lenient, "/rerank", { query: "q", texts: ["short", long], truncate: true })).body as TeiResult[];
  const viaVllm = (await post(lenient, "/rerank", { query: "q", documents: ["short", long] })).body as VllmResponse;
  assert.deepEqual(
    viaTei,
    viaVllm.results.map((r) => ({ index: r.index, score: r.relevance_score })),
  );
});

test("truncation_direction: Right is accepted, Left is refused with the reason, anything else is a 400", async () => {
  const { app } = await fakeApp();
  for (const direction of ["Right", "right"]) {
    assert.equal((await post(app, "/rerank", { query, texts, truncation_direction: direction })).status, 200, direction);
  }
  for (const direction of ["Left", "left"]) {
    expectBadRequest(await post(app, "/rerank", { query, texts, truncation_direction: direction }), "truncation_direction", /not supported/);
  }
  expectBadRequest(await post(app, "/rerank", { query, texts, truncation_direction: "Up" }), "truncation_direction", /truncation_direction/);
});

test("TEI mistakes are 400s naming TEI's fields; vLLM bodies keep their own messages", async () => {
  const { app } = await fakeApp();
  expectBadRequest(await post(app, "/rerank", { query, texts: [] }), "texts", /`texts` must contain at least 1/);
  expectBadRequest(await post(app, "/rerank", { query, texts: ["a", 7] }), "texts", /`texts\[1\]` must be a string/);
  expectBadRequest(await post(app, "/rerank", { query, texts: [{ text: "a" }] }), "texts", /`texts\[0\]` must be a string/);
  expectBadRequest(await post(app, "/rerank", { query, texts: "a" }), "texts", /`texts` must be an array/);
  expectBadRequest(await post(app, "/rerank", { query, texts: null }), "texts", /`texts` must be an array/);
  expectBadRequest(await post(app, "/rerank", { texts }), "query", /`query` is required/);
  expectBadRequest(await post(app, "/rerank", { query, texts, raw_scores: "yes" }), "raw_scores", /`raw_scores` must be a boolean/);
  expectBadRequest(await post(app, "/rerank", { query, texts, return_text: 1 }), "return_text", /`return_text` must be a boolean/);
  expectBadRequest(await post(app, "/rerank", { query, texts, truncate: "no" }), "truncate", /`truncate` must be a boolean/);
  // vLLM's shape is untouched by the dispatch.
  expectBadRequest(await post(app, "/rerank", { query }), "documents", /`documents` is required/);
  expectBadRequest(await post(app, "/rerank", { query, documents: ["a"], top_n: "2" }), "top_n", /`top_n` must be an integer/);
  expectBadRequest(await post(app, "/rerank", { query, documents: [3] }), "documents", /`documents\[0\]` must be a string, or an object/);
  expectBadRequest(await post(app, "/rerank", [query]), null as unknown as string, /must be a JSON object/);
});

test("TEI requests need the key like any other, and unknown fields are ignored as TEI ignores them", async () => {
  const { app } = await fakeApp({ apiKeys: ["k"] });
  const denied = await post(app, "/rerank", { query, texts });
  assert.equal(denied.status, 401);
  assert.equal((denied.body as ErrorBody).error.type, "AuthenticationError");
  const ok = await post(app, "/rerank", { query, texts, model: "anything", top_n: 1, extra: { a: 1 } }, { authorization: "Bearer k" });
  assert.equal(ok.status, 200);
  assert.equal((ok.body as TeiResult[]).length, texts.length, "TEI has no top_n");
});

test("the OpenAPI document describes both request shapes and both answers of the rerank routes", async () => {
  const { app } = await fakeApp();
  const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json() as {
    paths: Record<string, { post: { requestBody: { content: Record<string, { schema: { anyOf: Array<{ required: string[] }> } }> }; responses: Record<string, { content: Record<string, { schema: { anyOf: Array<{ type: string }> } }> }> } }>;
  };
  for (const url of ["/rerank", "/v1/rerank"]) {
    const request = doc.paths[url].post.requestBody.content["application/json"].schema;
    assert.deepEqual(
      request.anyOf.map((s) => s.required),
      [
        ["query", "documents"],
        ["query", "texts"],
      ],
    );
    const response = doc.paths[url].post.responses["200"].content["application/json"].schema;
    assert.deepEqual(
      response.anyOf.map((s) => s.type),
      ["object", "array"],
    );
  }
});

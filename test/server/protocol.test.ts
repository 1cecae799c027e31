/**
 * The wire contract of API.md on a fake model (scores are a deterministic function of the pair's
 * tokens): sorting, ties, top_n, document echo, score shapes, and every row of the error table.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fakeApp } from "../support/fake-app.js";
import { fakeScore } from "../support/fake-backend.js";

type Json = Record<string, unknown>;
const post = async (app: Awaited<ReturnType<typeof fakeApp>>["app"], url: string, payload: unknown, headers: Record<string, string> = {}) => {
  const response = await app.inject({
    method: "POST",
    url,
    payload: typeof payload === "string" ? payload : JSON.stringify(payload),
    headers: { "content-type": "application/json", ...headers },
  });
  return { status: response.statusCode, body: response.json() as Json, headers: response.headers };
};

const expectError = (r: { status: number; body: Json }, status: number, type: string, param?: string | null) => {
  assert.equal(r.status, status, JSON.stringify(r.body));
  const error = r.body.error as { message: string; type: string; param: string | null; code: number };
  assert.equal(error.type, type);
  assert.equal(error.code, status);
  assert.ok(error.message.length > 0);
  if (param !== undefined) assert.equal(error.param, param, error.message);
  assert.ok(!/\bat \w+ \(|\.ts:\d+|node_modules/.test(error.message), `no stack or path in ${error.message}`);
  return error;
};

test("rerank sorts by score, ties keep ascending index, top_n cuts, documents echo as {text}", async () => {
  const { app, family } = await fakeApp();
  const documents = ["beta", { text: "alpha" }, "beta", "gamma", { text: "delta", extra: 1 }];
  const r = await post(app, "/v1/rerank", { query: "q", documents, top_n: 3 });
  assert.equal(r.status, 200);
  const limits = { maxLength: 64, maxTokensPerDoc: 0, truncation: "auto" as const };
  const q = family.prepareQuery("q", limits);
  const texts = ["beta", "alpha", "beta", "gamma", "delta"];
  const expected = texts
    .map((t, index) => ({ index, score: 1 / (1 + Math.exp(-fakeScore(family.buildPair(q, t, limits).tokens))) }))
    .sort((a, b) => b.score - a.score || a.index - b.index);
  const results = r.body.results as Array<{ index: number; relevance_score: number; document: { text: string } }>;
  assert.equal(results.length, 3);
  results.forEach((res, i) => {
    assert.equal(res.index, expected[i].index);
    assert.equal(res.relevance_score, expected[i].score);
    assert.deepEqual(res.document, { text: texts[res.index] });
  });
  assert.match(String(r.body.id), /^rerank-/);
  assert.equal(r.body.model, "test-model");
});

test("identical documents tie and keep their original order", async () => {
  const { app } = await fakeApp();
  const r = await post(app, "/rerank", { query: "q", documents: ["same", "same", "same"], use_activation: false });
  assert.deepEqual((r.body.results as Array<{ index: number }>).map((x) => x.index), [0, 1, 2]);
});

test("top_n 0, absent or larger than the list returns everything; return_documents false omits documents", async () => {
  const { app } = await fakeApp();
  for (const top_n of [0, undefined, 99, null]) {
    const r = await post(app, "/v2/rerank", { query: "q", documents: ["a", "b", "c"], top_n });
    assert.equal((r.body.results as unknown[]).length, 3);
  }
  const r = await post(app, "/v1/rerank", { query: "q", documents: ["a", "b"], return_documents: false });
  for (const result of r.body.results as Json[]) assert.equal(result.document, undefined);
});

test("use_activation true is sigmoid of use_activation false", async () => {
  const { app } = await fakeApp();
  const raw = await post(app, "/v1/score", { queries: "q", documents: ["a", "bb"], use_activation: false });
  const act = await post(app, "/v1/score", { queries: "q", documents: ["a", "bb"] });
  const rawScores = (raw.body.data as Array<{ score: number }>).map((d) => d.score);
  const actScores = (act.body.data as Array<{ score: number }>).map((d) => d.score);
  rawScores.forEach((s, i) => assert.equal(actScores[i], 1 / (1 + Math.exp(-s))));
});

test("score: 1:1, 1:N and N:N, in pair order, with the legacy field names too", async () => {
  const { app } = await fakeApp();
  const one = await post(app, "/v1/score", { queries: "q", documents: "d" });
  assert.equal((one.body.data as unknown[]).length, 1);
  assert.equal(one.body.object, "list");
  assert.equal(typeof one.body.created, "number");
  const oneToMany = await post(app, "/score", { text_1: "q", text_2: ["a", "b", "c"] });
  const manyToMany = await post(app, "/score", { data_1: ["q", "q", "q"], data_2: ["a", "b", "c"] });
  assert.deepEqual(oneToMany.body.data, manyToMany.body.data);
  const data = oneToMany.body.data as Array<{ index: number; object: string }>;
  assert.deepEqual(data.map((d) => d.index), [0, 1, 2]);
  assert.ok(data.every((d) => d.object === "score"));
  const rerank = await post(app, "/v1/rerank", { query: "q", documents: ["a", "b", "c"] });
  for (const r of rerank.body.results as Array<{ index: number; relevance_score: number }>) {
    assert.equal(r.relevance_score, (data[r.index] as unknown as { score: number }).score);
  }
  assert.deepEqual(oneToMany.body.usage, rerank.body.usage);
});

test("error table: malformed JSON, wrong types, missing fields, bad lengths, negative top_n", async () => {
  const { app } = await fakeApp();
  expectError(await post(app, "/v1/rerank", "{not json"), 400, "BadRequestError");
  expectError(await post(app, "/v1/rerank", ""), 400, "BadRequestError");
  expectError(await post(app, "/v1/rerank", "[1,2]"), 400, "BadRequestError");
  expectError(await post(app, "/v1/rerank", { documents: ["a"] }), 400, "BadRequestError", "query");
  expectError(await post(app, "/v1/rerank", { query: "q" }), 400, "BadRequestError", "documents");
  expectError(await post(app, "/v1/rerank", { query: 5, documents: ["a"] }), 400, "BadRequestError", "query");
  expectError(await post(app, "/v1/rerank", { query: "q", documents: "a" }), 400, "BadRequestError", "documents");
  expectError(await post(app, "/v1/rerank", { query: "q", documents: [] }), 400, "BadRequestError", "documents");
  const docError = expectError(await post(app, "/v1/rerank", { query: "q", documents: ["a", 7] }), 400, "BadRequestError", "documents");
  assert.match(docError.message, /documents\[1\]/);
  expectError(await post(app, "/v1/rerank", { query: "q", documents: [{ txt: "a" }] }), 400, "BadRequestError", "documents");
  const topN = expectError(await post(app, "/v1/rerank", { query: "q", documents: ["a"], top_n: -1 }), 400, "BadRequestError", "top_n");
  assert.match(topN.message, />= 0/);
  expectError(await post(app, "/v1/rerank", { query: "q", documents: ["a"], top_n: 1.5 }), 400, "BadRequestError", "top_n");
  expectError(await post(app, "/v1/rerank", { query: "q", documents: ["a"], use_activation: "yes" }), 400, "BadRequestError", "use_activation");
  expectError(await post(app, "/v1/rerank", { query: "q", documents: ["a"], truncate_prompt_tokens: -2 }), 400, "BadRequestError", "truncate_prompt_tokens");
  expectError(await post(app, "/v1/rerank", { query: "q", documents: ["a"], truncate_prompt_tokens: 65 }), 400, "BadRequestError", "truncate_prompt_tokens");
  const lengths = expectError(await post(app, "/v1/score", { queries: ["a", "b"], documents: ["a", "b", "c"] }), 400, "BadRequestError", "queries");
  assert.match(lengths.message, /Input lengths must be either 1:1, 1:N or N:N/);
  expectError(await post(app, "/v1/score", { queries: [], documents: ["a"] }), 400, "BadRequestError", "queries");
  expectError(await post(app, "/v1/score", { queries: "q", documents: [] }), 400, "BadRequestError", "documents");
  expectError(await post(app, "/v1/score", { queries: "q" }), 400, "BadRequestError", "documents");
  expectError(await post(app, "/v1/score", {}), 400, "BadRequestError", "queries");
  expectError(await post(app, "/v1/score", { queries: "q", documents: "d", text_1: "x", text_2: "y" }), 400, "BadRequestError");
});

test("error table: content type 415, oversized body 413, unknown model 404, unknown route 404", async () => {
  const { app } = await fakeApp({ maxBodyBytes: 2048 });
  const text = await app.inject({ method: "POST", url: "/v1/rerank", payload: "query=x", headers: { "content-type": "text/plain" } });
  expectError({ status: text.statusCode, body: text.json() }, 415, "UnsupportedMediaTypeError");
  expectError(await post(app, "/v1/rerank", { query: "q", documents: ["x".repeat(5000)] }), 413, "PayloadTooLargeError");
  const model = expectError(await post(app, "/v1/rerank", { model: "other", query: "q", documents: ["a"] }), 404, "NotFoundError", "model");
  assert.match(model.message, /other/);
  expectError(await post(app, "/v1/score", { model: "other", queries: "q", documents: "a" }), 404, "NotFoundError", "model");
  const r = await post(app, "/v1/rerank", { model: "test-model", query: "q", documents: ["a"] });
  assert.equal(r.status, 200);
  const route = await app.inject({ method: "GET", url: "/v1/nothing" });
  expectError({ status: route.statusCode, body: route.json() }, 404, "NotFoundError");
});

test("error table: a pair too long with truncation disabled is a 400 on input_tokens", async () => {
  const { app } = await fakeApp({ truncation: "error", maxLength: 32 });
  const error = expectError(await post(app, "/v1/rerank", { query: "q", documents: ["short", "x".repeat(100)] }), 400, "BadRequestError", "input_tokens");
  assert.match(error.message, /documents\[1\]/);
  expectError(await post(app, "/v1/rerank", { query: "x".repeat(100), documents: ["a"] }), 400, "BadRequestError", "input_tokens");
  assert.equal((await post(app, "/v1/rerank", { query: "q", documents: ["short"] })).status, 200);
});

test("error table: an engine failure is a 500 for that request only, and the server keeps serving", async () => {
  const { app, backend } = await fakeApp();
  backend.failOnToken = "!".codePointAt(0) as number;
  const [bad, good] = await Promise.all([
    post(app, "/v1/rerank", { query: "q", documents: ["boom!", "fine"] }),
    post(app, "/v1/rerank", { query: "q", documents: ["fine", "also fine"] }),
  ]);
  const error = expectError(bad, 500, "InternalServerError", null);
  assert.doesNotMatch(error.message, /injected/);
  assert.equal(good.status, 200);
  backend.failOnToken = null;
  assert.equal((await post(app, "/v1/rerank", { query: "q", documents: ["boom!"] })).status, 200);
});

test("unknown fields are accepted and ignored; null optionals mean absent", async () => {
  const { app } = await fakeApp();
  const r = await post(app, "/v1/rerank", {
    query: "q",
    documents: ["a"],
    max_chunks_per_doc: 10,
    rank_fields: ["text"],
    user: "user_123",
    priority: 0,
    request_id: "abc",
    top_n: null,
    use_activation: null,
    model: null,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
});

test("X-Request-Id is honoured in the response id and echoed", async () => {
  const { app } = await fakeApp();
  const r = await post(app, "/v1/rerank", { query: "q", documents: ["a"] }, { "x-request-id": "trace-42" });
  assert.equal(r.body.id, "rerank-trace-42");
  assert.equal(r.headers["x-request-id"], "trace-42");
});

test("tokenize/detokenize round trip; bad token ids are a 400 naming tokens", async () => {
  const { app } = await fakeApp();
  const t = await post(app, "/tokenize", { prompt: "hey" });
  assert.deepEqual(t.body, { count: 4, max_model_len: 64, tokens: [1, 104, 101, 121] });
  const plain = await post(app, "/tokenize", { prompt: "hey", add_special_tokens: false });
  assert.deepEqual(plain.body.tokens, [104, 101, 121]);
  const d = await post(app, "/detokenize", { tokens: [104, 101, 121] });
  assert.deepEqual(d.body, { prompt: "hey" });
  expectError(await post(app, "/detokenize", { tokens: [0x110000] }), 400, "BadRequestError", "tokens");
  expectError(await post(app, "/detokenize", { tokens: [-1] }), 400, "BadRequestError", "tokens");
  expectError(await post(app, "/tokenize", {}), 400, "BadRequestError", "prompt");
});

test("/v1/models, /health, /ping, /version, /metrics, /openapi.json", async () => {
  const { app, model } = await fakeApp();
  const models = (await app.inject({ method: "GET", url: "/v1/models" })).json() as Json;
  assert.deepEqual(models, {
    object: "list",
    data: [{ id: "test-model", object: "model", created: 1, owned_by: "rerankd", root: "fake", max_model_len: 64 }],
  });
  const health = await app.inject({ method: "GET", url: "/health" });
  assert.equal(health.statusCode, 200);
  assert.equal(health.body, "");
  assert.equal((await app.inject({ method: "GET", url: "/ping" })).statusCode, 200);
  assert.match(String(((await app.inject({ method: "GET", url: "/version" })).json() as Json).version), /^\d+\.\d+\.\d+/);
  await post(app, "/v1/rerank", { query: "q", documents: ["a", "b"] });
  const metrics = (await app.inject({ method: "GET", url: "/metrics" })).body;
  assert.match(metrics, /rerankd_requests_total\{route="\/v1\/rerank",method="POST",status="200"\} 1/);
  assert.match(metrics, /rerankd_request_duration_seconds_bucket/);
  assert.match(metrics, /rerankd_prompt_tokens_total \d+/);
  const openapi = (await app.inject({ method: "GET", url: "/openapi.json" })).json() as { paths: Record<string, unknown> };
  for (const path of ["/v1/rerank", "/rerank", "/v2/rerank", "/v1/score", "/score", "/tokenize", "/detokenize", "/v1/models"]) {
    assert.ok(openapi.paths[path], `${path} in the OpenAPI document`);
  }
  const docs = await app.inject({ method: "GET", url: "/docs" });
  assert.ok(docs.statusCode === 200 || docs.statusCode === 302);
  model.state = { status: "loading" };
  assert.equal((await app.inject({ method: "GET", url: "/health" })).statusCode, 503);
  expectError(await post(app, "/v1/rerank", { query: "q", documents: ["a"] }), 503, "ServiceUnavailableError");
});

test("authentication: every protected route needs a valid key; public routes stay open", async () => {
  const { app } = await fakeApp({ apiKeys: ["k-one", "k-two"] });
  const protectedRoutes: Array<[string, string, unknown]> = [
    ["POST", "/v1/rerank", { query: "q", documents: ["a"] }],
    ["POST", "/rerank", { query: "q", documents: ["a"] }],
    ["POST", "/v2/rerank", { query: "q", documents: ["a"] }],
    ["POST", "/v1/score", { queries: "q", documents: ["a"] }],
    ["POST", "/score", { queries: "q", documents: ["a"] }],
    ["POST", "/tokenize", { prompt: "a" }],
    ["POST", "/detokenize", { tokens: [97] }],
    ["GET", "/v1/models", undefined],
  ];
  for (const [method, url, body] of protectedRoutes) {
    for (const authorization of [undefined, "Bearer wrong", "k-one", "Bearer ", "Basic k-one"]) {
      const r = await app.inject({
        method: method as "GET" | "POST",
        url,
        payload: body === undefined ? undefined : JSON.stringify(body),
        headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
      });
      expectError({ status: r.statusCode, body: r.json() }, 401, "AuthenticationError");
    }
    for (const key of ["k-one", "k-two"]) {
      const r = await app.inject({
        method: method as "GET" | "POST",
        url,
        payload: body === undefined ? undefined : JSON.stringify(body),
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      });
      assert.equal(r.statusCode, 200, `${method} ${url} with a valid key`);
    }
  }
  for (const url of ["/health", "/ping", "/version", "/metrics"]) {
    assert.equal((await app.inject({ method: "GET", url })).statusCode, 200, url);
  }
});

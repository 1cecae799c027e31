/**
 * Hostile input and access control: CORS off unless configured, the per-key rate limit, JSON that
 * tries prototype pollution, deep nesting, huge numbers; `model` as a path; keys never echoed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { errorOf, hardenedApp, post } from "./harness.js";

const ok = { query: "q", documents: ["a", "b"] };

test("CORS is off by default: no Access-Control headers, preflights are not answered", async () => {
  const { app } = await hardenedApp();
  const r = await post(app, "/v1/rerank", ok, { origin: "https://evil.example" });
  assert.equal(r.status, 200);
  assert.equal(r.headers["access-control-allow-origin"], undefined);
  const preflight = await app.inject({
    method: "OPTIONS",
    url: "/v1/rerank",
    headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
  });
  assert.equal(preflight.headers["access-control-allow-origin"], undefined);
  assert.notEqual(preflight.statusCode, 204);
});

test("--allowed-origins: listed origins get CORS headers (errors too), preflight before auth; others get none", async () => {
  const { app } = await hardenedApp({ allowedOrigins: ["https://search.example"], apiKeys: ["k1"] });
  const preflight = await app.inject({
    method: "OPTIONS",
    url: "/v1/rerank",
    headers: { origin: "https://search.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
  });
  assert.equal(preflight.statusCode, 204);
  assert.equal(preflight.headers["access-control-allow-origin"], "https://search.example");
  assert.match(String(preflight.headers["access-control-allow-headers"]), /authorization/);
  const unauthorized = await post(app, "/v1/rerank", ok, { origin: "https://search.example" });
  assert.equal(unauthorized.status, 401);
  assert.equal(unauthorized.headers["access-control-allow-origin"], "https://search.example");
  const good = await post(app, "/v1/rerank", ok, { origin: "https://search.example", authorization: "Bearer k1" });
  assert.equal(good.status, 200);
  assert.match(String(good.headers["access-control-expose-headers"]), /x-request-id/);
  const other = await post(app, "/v1/rerank", ok, { origin: "https://evil.example", authorization: "Bearer k1" });
  assert.equal(other.headers["access-control-allow-origin"], undefined);
});

test("per-key rate limit: a key over its rate gets 429 with Retry-After; other keys and public routes are unaffected", async () => {
  const { app } = await hardenedApp({ apiKeys: ["k1", "k2"], rateLimit: { perSecond: 1, burst: 3 } });
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  for (let i = 0; i < 3; i++) assert.equal((await post(app, "/v1/rerank", ok, as("k1"))).status, 200);
  const limited = await post(app, "/v1/rerank", ok, as("k1"));
  const e = errorOf(limited);
  assert.equal(e.code, 429);
  assert.equal(e.type, "RateLimitError");
  assert.match(e.message, /API key.*--rate-limit/);
  assert.doesNotMatch(e.message, /k1/);
  assert.ok(Number(limited.headers["retry-after"]) >= 1);
  assert.equal((await post(app, "/v1/rerank", ok, as("k2"))).status, 200);
  for (let i = 0; i < 5; i++) assert.equal((await app.inject({ method: "GET", url: "/health" })).statusCode, 200);
  // A wrong key is refused by authentication (401), before it could use anyone's bucket.
  assert.equal((await post(app, "/v1/rerank", ok, as("nope"))).status, 401);
  const metrics = (await app.inject({ method: "GET", url: "/metrics" })).body;
  assert.match(metrics, /rerankd_requests_rejected_total\{reason="rate_limited"\} 1/);
});

test("prototype pollution through JSON is refused, and nothing is polluted", async () => {
  const { app } = await hardenedApp();
  for (const body of [
    '{"__proto__":{"polluted":true},"query":"q","documents":["a"]}',
    '{"query":"q","documents":[{"text":"a","__proto__":{"polluted":true}}]}',
    '{"constructor":{"prototype":{"polluted":true}},"query":"q","documents":["a"]}',
  ]) {
    const r = await post(app, "/v1/rerank", body);
    assert.ok(r.status === 400 || r.status === 200, `${r.status} for ${body}`);
    if (r.status === 400) errorOf(r);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
});

test("deep nesting, huge numbers and odd values never produce a 5xx", async () => {
  const { app } = await hardenedApp({ maxBodyBytes: 16 << 20 });
  const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
  for (const body of [
    `{"query":"q","documents":["a"],"extra":${deep(100_000)}}`,
    `{"query":"q","documents":${deep(50_000)}}`,
    `{"query":"q","documents":["a"],"extra":${`{"a":`.repeat(50_000)}1${"}".repeat(50_000)}}`,
    '{"query":"q","documents":["a"],"top_n":1e308}',
    '{"query":"q","documents":["a"],"top_n":1e400}',
    '{"query":"q","documents":["a"],"truncate_prompt_tokens":1e308}',
    '{"query":"q","documents":["a"],"max_tokens_per_doc":9007199254740993}',
    '{"query":"q","documents":["a"],"priority":-1e308}',
    '{"query":"q","documents":["a"],"top_n":-0}',
    '{"queries":"q","documents":"a","truncate_prompt_tokens":-1}',
    '{"prompt":"\\ud800 lone surrogate"}',
  ]) {
    for (const url of body.includes("prompt") ? ["/tokenize"] : body.includes("queries") ? ["/v1/score"] : ["/v1/rerank"]) {
      const r = await post(app, url, body);
      assert.ok(r.status < 500, `${r.status} for ${body.slice(0, 80)}: ${JSON.stringify(r.body).slice(0, 200)}`);
      if (r.status >= 400) errorOf(r);
    }
  }
  const big = await post(app, "/v1/rerank", '{"query":"q","documents":["a","b"],"top_n":1e308}');
  assert.equal((big.body.results as unknown[]).length, 2);
});

test("`model` is a name compared with the served name, never opened: a path is a 404 that echoes it cut short", async () => {
  const { app } = await hardenedApp();
  for (const model of ["/etc/passwd", "../../.cache/fixtures/x.gguf", "file:///etc/shadow", "m".repeat(10_000)]) {
    const e = errorOf(await post(app, "/v1/rerank", { ...ok, model }));
    assert.equal(e.code, 404);
    assert.equal(e.param, "model");
    assert.ok(e.message.length < 300, `message of ${e.message.length} chars`);
  }
});

test("API keys are never logged and never appear in an answer", async () => {
  const { app, logs } = await hardenedApp({ apiKeys: ["sekrit-key-1"], logLevel: "debug", logRequests: true });
  await post(app, "/v1/rerank", ok, { authorization: "Bearer sekrit-key-1" });
  const wrong = await post(app, "/v1/rerank", ok, { authorization: "Bearer sekrit-wrong-2" });
  assert.equal(wrong.status, 401);
  assert.doesNotMatch(JSON.stringify(wrong.body), /sekrit/);
  const text = JSON.stringify(logs);
  assert.ok(logs.length >= 2);
  assert.doesNotMatch(text, /sekrit/);
});

/**
 * One JSON log line per completed request: request id (X-Request-Id honoured and echoed), route,
 * status, duration and the body's `user`; never the query or document text unless --log-requests.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { hardenedApp, post } from "./harness.js";

const lines = (logs: Array<Record<string, unknown>>) => logs.filter((l) => l.msg === "request completed" || l.msg === "request failed");

test("one line per request with its id and user; no query or document text; no Fastify request lines", async () => {
  const { app, logs } = await hardenedApp({ logLevel: "info" });
  const r = await post(app, "/v1/rerank", { query: "secret query text", documents: ["private document"], user: "user_123" }, { "x-request-id": "trace-7" });
  assert.equal(r.status, 200);
  assert.equal(r.headers["x-request-id"], "trace-7");
  await post(app, "/v1/score", { queries: "another secret", documents: ["x"] });
  await post(app, "/v1/rerank", { query: "q" });
  const done = lines(logs);
  assert.equal(done.length, 3, JSON.stringify(logs));
  assert.equal(logs.length, 3, "nothing but the completion lines");
  assert.deepEqual(
    { reqId: done[0].reqId, route: done[0].route, status: done[0].status, user: done[0].user, method: done[0].method },
    { reqId: "trace-7", route: "/v1/rerank", status: 200, user: "user_123", method: "POST" },
  );
  assert.equal(typeof done[0].ms, "number");
  assert.match(String(done[1].reqId), /^[0-9a-f-]{36}$/);
  assert.equal(done[2].status, 400);
  assert.deepEqual(done[2].error, { type: "BadRequestError", message: "`documents` is required." });
  const text = JSON.stringify(logs);
  assert.doesNotMatch(text, /secret|private/);
});

test("--log-requests adds the texts; an unusable X-Request-Id is replaced, not echoed", async () => {
  const { app, logs } = await hardenedApp({ logLevel: "info", logRequests: true });
  const r = await post(app, "/v1/rerank", { query: "visible query", documents: ["visible doc"] }, { "x-request-id": "bad id with spaces\u0007" });
  assert.doesNotMatch(String(r.headers["x-request-id"]), /bad/);
  const [line] = lines(logs);
  assert.equal(line.query, "visible query");
  assert.deepEqual(line.documents, ["visible doc"]);
  assert.equal(line.reqId, r.headers["x-request-id"]);
});

test("an engine failure is logged once at error level with its cause; the client sees no internals", async () => {
  const { app, logs, backend } = await hardenedApp({ logLevel: "info" });
  backend.failOnToken = "!".codePointAt(0) as number;
  const r = await post(app, "/v1/rerank", { query: "q", documents: ["boom!"] }, { "x-request-id": "fail-1" });
  assert.equal(r.status, 500);
  assert.doesNotMatch(JSON.stringify(r.body), /injected|stack|\.ts/);
  const [line] = lines(logs);
  assert.equal(line.level, 50);
  assert.equal(line.reqId, "fail-1");
  assert.match(JSON.stringify(line.err), /injected evaluation failure/);
});

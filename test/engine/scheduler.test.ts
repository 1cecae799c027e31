import { test } from "node:test";
import assert from "node:assert/strict";
import { EvaluationError, Scheduler } from "../../src/engine/scheduler.js";
import { CancelledError } from "../../src/server/errors.js";
import type { PairTokens, Readout } from "../../src/families/types.js";
import { FakeBackend, fakeScore } from "../support/fake-backend.js";

const readout: Readout = { kind: "last-token-logits", tokenIds: [0] };

/** Pairs of one query: a shared prefix [1, q, q] then the document's tokens. */
function pairs(query: number, documents: number, docLength = 3): PairTokens[] {
  return Array.from({ length: documents }, (_, d) => ({
    tokens: [1, query, query, ...Array.from({ length: docLength }, (_, k) => 100 + d * 7 + k)],
    prefixLength: 3,
  }));
}

test("every pair's result comes back to its own request, in pair order, under concurrency", async () => {
  const backend = new FakeBackend(3);
  const scheduler = new Scheduler(backend);
  const jobs = Array.from({ length: 20 }, (_, r) => pairs(r % 5, 1 + ((r * 7) % 9)));
  const results = await Promise.all(jobs.map((p) => scheduler.submit({ pairs: p, readout })));
  results.forEach((result, r) => {
    assert.deepEqual(
      result.values.map((v) => v[0]),
      jobs[r].map((p) => fakeScore(p.tokens)),
    );
  });
  assert.deepEqual(scheduler.stats(), { queuedRequests: 0, queuedPairs: 0, queuedTokens: 0, busyLanes: 0, lanes: 3 });
});

test("a lane keeps a query's prefix: each lane evaluates the prefix once per request", async () => {
  const backend = new FakeBackend(2);
  const scheduler = new Scheduler(backend);
  const result = await scheduler.submit({ pairs: pairs(7, 10), readout });
  const reusedCalls = backend.calls.filter((c) => c.reused === 3).length;
  assert.equal(reusedCalls, 10 - 2, "all but the first pair on each lane reuse the prefix");
  assert.equal(result.evaluatedTokens, 10 * 6 - 8 * 3);
});

test("a small request arriving behind a large one is not starved", async () => {
  const backend = new FakeBackend(2);
  const scheduler = new Scheduler(backend);
  const large = scheduler.submit({ pairs: pairs(1, 200), readout });
  await new Promise((r) => setTimeout(r, 10));
  let smallDoneAt = 0;
  const small = scheduler.submit({ pairs: pairs(2, 2), readout }).then(() => (smallDoneAt = backend.calls.length));
  await Promise.all([large, small]);
  // The small request's two pairs are taken by the next free lanes, not after the 200.
  assert.ok(smallDoneAt < 20, `small request finished after ${smallDoneAt} evaluations`);
});

test("two large requests share the lanes rather than running one after the other", async () => {
  const backend = new FakeBackend(2);
  const scheduler = new Scheduler(backend);
  const a = pairs(1, 30);
  const b = pairs(2, 30);
  await Promise.all([scheduler.submit({ pairs: a, readout }), scheduler.submit({ pairs: b, readout })]);
  const firstHalf = backend.calls.slice(0, 30);
  const ofB = firstHalf.filter((c) => c.tokens[1] === 2).length;
  assert.ok(ofB >= 10 && ofB <= 20, `request b had ${ofB} of the first 30 evaluations`);
});

test("cancelling a request drops its queued pairs at once and serves the others", async () => {
  const backend = new FakeBackend(1);
  const scheduler = new Scheduler(backend);
  const controller = new AbortController();
  const doomed = scheduler.submit({ pairs: pairs(3, 100), readout, signal: controller.signal });
  const other = scheduler.submit({ pairs: pairs(4, 5), readout });
  await new Promise((r) => setTimeout(r, 15));
  controller.abort(new CancelledError("client-closed"));
  await assert.rejects(doomed, CancelledError);
  assert.equal(scheduler.stats().queuedPairs <= 5, true);
  const result = await other;
  assert.equal(result.values.length, 5);
  const evaluatedOfDoomed = backend.calls.filter((c) => c.tokens[1] === 3).length;
  assert.ok(evaluatedOfDoomed < 20, `${evaluatedOfDoomed} pairs of the cancelled request were still evaluated`);
  await scheduler.idle();
  assert.equal(scheduler.stats().queuedTokens, 0);
});

test("an already-aborted signal is refused without evaluating anything", async () => {
  const backend = new FakeBackend(1);
  const scheduler = new Scheduler(backend);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(scheduler.submit({ pairs: pairs(1, 3), readout, signal: controller.signal }), CancelledError);
  assert.equal(backend.calls.length, 0);
});

test("an evaluation failure fails only its request; the lane is reset and the next request succeeds", async () => {
  const backend = new FakeBackend(2);
  const scheduler = new Scheduler(backend);
  backend.failOnToken = 666;
  const bad: PairTokens[] = [...pairs(5, 3), { tokens: [1, 5, 5, 666], prefixLength: 3 }];
  const good = pairs(6, 6);
  const [badResult, goodResult] = await Promise.allSettled([
    scheduler.submit({ pairs: bad, readout }),
    scheduler.submit({ pairs: good, readout }),
  ]);
  assert.equal(badResult.status, "rejected");
  assert.ok((badResult as PromiseRejectedResult).reason instanceof EvaluationError);
  assert.equal(goodResult.status, "fulfilled");
  backend.failOnToken = null;
  const after = await scheduler.submit({ pairs: pairs(7, 4), readout });
  assert.equal(after.values.length, 4);
  await scheduler.idle();
  assert.deepEqual(scheduler.stats(), { queuedRequests: 0, queuedPairs: 0, queuedTokens: 0, busyLanes: 0, lanes: 2 });
});

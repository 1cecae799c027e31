import { test } from "node:test";
import assert from "node:assert/strict";
import { EvaluationError, Scheduler } from "../../src/engine/scheduler.js";
import { CancelledError } from "../../src/server/errors.js";
import type { PairTokens, Readout } from "../../src/families/types.js";
import { FakeBackend, fakeScore } from "../support/fake-backend.js";
import { StepFakeBackend, readout as stepReadout } from "./step-fake.js";
import { createRng } from "../support/rng.js";

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

// ---------------------------------------------------------------------------
// Explicit steps (backends with a stepper: the llama.cpp causal backend), on a fake that enforces
// the KV contract and computes each score from what the lane really holds.


/** A pair of `query` (prefix of `prefixLength` tokens) and a document unique to (tag, d). */
function stepPair(query: number, prefixLength: number, tag: number, d: number, docLength: number): PairTokens {
  const prefix = [1, ...Array.from({ length: prefixLength - 1 }, (_, k) => 10_000 + query * 100 + k)];
  const doc = Array.from({ length: docLength }, (_, k) => 200_000 + tag * 10_000 + d * 100 + k);
  return { tokens: [...prefix, ...doc, 7, 8, 9], prefixLength };
}

function stepPairs(query: number, documents: number, options: { tag: number; prefixLength?: number; docLength?: number | ((d: number) => number) }): PairTokens[] {
  const length = options.docLength ?? 5;
  return Array.from({ length: documents }, (_, d) =>
    stepPair(query, options.prefixLength ?? 6, options.tag, d, typeof length === "function" ? length(d) : length),
  );
}

function assertScores(result: { values: number[][] }, pairs: readonly PairTokens[]): void {
  assert.deepEqual(
    result.values.map((v) => v[0]),
    pairs.map((p) => fakeScore(p.tokens)),
  );
}

test("steps: every step stays within the token budget, long pairs continue across steps, scores are exact", async () => {
  for (const computeBound of [false, true]) {
    const backend = new StepFakeBackend(3, 32);
    const scheduler = new Scheduler(backend, {}, { computeBound });
    const jobs = [stepPairs(1, 7, { tag: 1, docLength: (d) => 20 + d * 13 }), stepPairs(2, 5, { tag: 2, docLength: 3 })];
    const results = await Promise.all(jobs.map((pairs) => scheduler.submit({ pairs, readout: stepReadout })));
    results.forEach((r, i) => assertScores(r, jobs[i]));
    assert.deepEqual(backend.violations, []);
    assert.ok(backend.steps.every((s) => s.tokens <= 32));
    assert.ok(backend.steps.some((s) => s.items.some((i) => !i.readout)), "some pair was split into chunks");
    // On a GPU steps are full whenever enough work is waiting: the budget is shared out, not left
    // idle. On a CPU the shortest request's steps are its own (see shortestFirst).
    if (!computeBound) assert.ok(backend.steps.filter((s) => s.tokens === 32).length >= backend.steps.length / 2);
  }
});

test("steps: a request's query prefix is evaluated once, other lanes copy it", async () => {
  const backend = new StepFakeBackend(4, 512);
  const scheduler = new Scheduler(backend, {}, { computeBound: true, maxLanesPerRequest: 4 });
  const pairs = stepPairs(3, 20, { tag: 3, prefixLength: 12, docLength: 9 });
  const result = await scheduler.submit({ pairs, readout: stepReadout });
  assertScores(result, pairs);
  assert.deepEqual(backend.violations, []);
  const docPart = pairs[0].tokens.length - 12;
  assert.equal(backend.evaluatedTokens(), 12 + 20 * docPart, "the prefix's 12 tokens were evaluated once");
  assert.equal(result.evaluatedTokens, backend.evaluatedTokens());
  assert.equal(backend.copies.length, 3, "the three other lanes copied it");
  assert.equal(scheduler.counters().prefixCopies, 3);
  // The first step ran the prefix on one lane only; from the second on all four lanes work.
  assert.equal(backend.steps[0].items.length, 1);
  assert.equal(backend.steps[1].items.length, 4);
});

test("steps: on a GPU (not compute-bound) no lane rests: lanes without other work compute the prefix too", async () => {
  const backend = new StepFakeBackend(4, 512);
  const scheduler = new Scheduler(backend, {}, { computeBound: false });
  const pairs = stepPairs(3, 20, { tag: 3, prefixLength: 12, docLength: 9 });
  assertScores(await scheduler.submit({ pairs, readout: stepReadout }), pairs);
  assert.deepEqual(backend.violations, []);
  assert.equal(backend.steps[0].items.length, 4, "all four lanes work from the first step");
  const docPart = pairs[0].tokens.length - 12;
  assert.equal(backend.evaluatedTokens(), 4 * 12 + 20 * docPart);
});

test("steps: on the CPU one request leaves a lane free, so a request arriving next starts at the next step", async () => {
  const backend = new StepFakeBackend(4, 64);
  const scheduler = new Scheduler(backend);
  const large = scheduler.submit({ pairs: stepPairs(1, 40, { tag: 1, docLength: 50 }), readout: stepReadout });
  while (backend.steps.length < 3) await new Promise((r) => setTimeout(r, 1));
  assert.ok(backend.steps.every((s) => s.items.length <= 3), "the long request holds at most 3 of 4 lanes");
  const at = backend.steps.length;
  const pairs = stepPairs(2, 1, { tag: 2, docLength: 10 });
  const small = scheduler.submit({ pairs, readout: stepReadout });
  await small;
  assert.ok(backend.steps.length - at <= 2, `the small request finished ${backend.steps.length - at} steps after it arrived`);
  // The budget is shared by request: the small request got half of its step, not a quarter.
  const smallItems = backend.steps.slice(at).flatMap((s) => s.items.filter((i) => i.query === pairs[0].tokens[1]).map((i) => ({ i, s })));
  assert.ok(smallItems.some(({ i }) => i.to - i.from >= 32 || i.to === i.pairLength));
  await large;
  assert.deepEqual(backend.violations, []);
});

test("steps: chunks a few tokens apart are evened out (one llama.cpp ubatch) by re-evaluating held tokens", async () => {
  const backend = new StepFakeBackend(3, 512);
  const scheduler = new Scheduler(backend, {}, { computeBound: true, maxLanesPerRequest: 3 });
  // Documents of 40..44 tokens: pairs a few tokens apart.
  const pairs = stepPairs(8, 12, { tag: 8, prefixLength: 10, docLength: (d) => 40 + (d % 5) });
  assertScores(await scheduler.submit({ pairs, readout: stepReadout }), pairs);
  assert.deepEqual(backend.violations, []);
  const multi = backend.steps.filter((s) => s.items.length > 1);
  assert.ok(multi.length >= 3);
  for (const step of multi) {
    const lengths = new Set(step.items.map((i) => i.to - i.from));
    assert.equal(lengths.size, 1, `a step's chunks: ${step.items.map((i) => i.to - i.from).join(", ")}`);
  }
});

test("steps: identical queries of concurrent requests share one prefix evaluation", async () => {
  const backend = new StepFakeBackend(2, 512);
  const scheduler = new Scheduler(backend);
  const a = stepPairs(4, 6, { tag: 4, prefixLength: 10 });
  const b = stepPairs(4, 6, { tag: 5, prefixLength: 10 });
  const c = stepPairs(4, 1, { tag: 6, prefixLength: 10 });
  const results = await Promise.all([a, b, c].map((pairs) => scheduler.submit({ pairs, readout: stepReadout })));
  [a, b, c].forEach((pairs, i) => assertScores(results[i], pairs));
  assert.deepEqual(backend.violations, []);
  const docPart = a[0].tokens.length - 10;
  assert.equal(backend.evaluatedTokens(), 10 + 13 * docPart);
});

test("steps: without a KV copy each lane evaluates the prefix once and keeps it", async () => {
  const backend = new StepFakeBackend(3, 512, { copy: false });
  const scheduler = new Scheduler(backend, {}, { computeBound: false });
  const pairs = stepPairs(5, 12, { tag: 7, prefixLength: 8 });
  const result = await scheduler.submit({ pairs, readout: stepReadout });
  assertScores(result, pairs);
  assert.deepEqual(backend.violations, []);
  const docPart = pairs[0].tokens.length - 8;
  assert.equal(backend.evaluatedTokens(), 3 * 8 + 12 * docPart);
  // Between pairs a lane only drops what follows the prefix.
  assert.ok(backend.truncations.every((t) => t.keep === 8 || t.keep === 0), JSON.stringify(backend.truncations));
});

test("steps: small requests arriving during a 256-document request finish within a few steps", async () => {
  const backend = new StepFakeBackend(4, 256);
  const scheduler = new Scheduler(backend);
  const large = scheduler.submit({ pairs: stepPairs(6, 256, { tag: 8, docLength: 40 }), readout: stepReadout });
  const smallWaits: number[] = [];
  const smalls: Array<Promise<void>> = [];
  for (let k = 0; k < 6; k++) {
    await new Promise((r) => setTimeout(r, 15));
    const pairs = stepPairs(100 + k, 2, { tag: 100 + k, docLength: 40 });
    const submittedAtStep = backend.steps.length;
    smalls.push(
      scheduler.submit({ pairs, readout: stepReadout }).then((r) => {
        assertScores(r, pairs);
        smallWaits.push(backend.steps.length - submittedAtStep);
      }),
    );
  }
  await Promise.all([large, ...smalls]);
  assert.deepEqual(backend.violations, []);
  // A 2-pair request needs one step for its prefix and pairs, one more at most for a lane to free up
  // (pairs here fit one step), and one for a second prefix copy: never the 256-document backlog.
  assert.ok(Math.max(...smallWaits) <= 4, `small requests waited ${smallWaits.join(", ")} steps`);
  console.log(`small requests waited ${smallWaits.join(", ")} steps`);
});

test("steps: a cancelled request leaves the lanes at the next step boundary, mid-pair included", async () => {
  const backend = new StepFakeBackend(2, 16);
  backend.delayMs = 3;
  const scheduler = new Scheduler(backend);
  const controller = new AbortController();
  const doomedPairs = stepPairs(9, 50, { tag: 9, docLength: 60 });
  const doomed = scheduler.submit({ pairs: doomedPairs, readout: stepReadout, signal: controller.signal });
  const otherPairs = stepPairs(10, 3, { tag: 10, docLength: 60 });
  const other = scheduler.submit({ pairs: otherPairs, readout: stepReadout });
  while (backend.steps.length < 5) await new Promise((r) => setTimeout(r, 1));
  controller.abort(new CancelledError("client-closed"));
  const cancelledAt = backend.steps.length;
  await assert.rejects(doomed, CancelledError);
  assert.equal(scheduler.stats().queuedPairs, scheduler.stats().queuedPairs); // stats readable mid-flight
  assertScores(await other, otherPairs);
  const later = backend.steps.slice(cancelledAt + 1).flatMap((s) => s.items).filter((i) => i.query === doomedPairs[0].tokens[1]);
  assert.equal(later.length, 0, "no chunk of the cancelled request ran after the step in progress");
  await scheduler.idle();
  assert.deepEqual(scheduler.stats(), { queuedRequests: 0, queuedPairs: 0, queuedTokens: 0, busyLanes: 0, lanes: 2 });
  assert.deepEqual(backend.violations, []);
});

test("steps: a failed item fails its request only; the lane is reset and serves the next pair correctly", async () => {
  const backend = new StepFakeBackend(2, 64);
  const scheduler = new Scheduler(backend);
  backend.failOnToken = 424_242;
  const bad: PairTokens[] = [...stepPairs(11, 3, { tag: 11 }), { tokens: [1, 424_242, 5, 6], prefixLength: 2 }];
  const good = stepPairs(12, 6, { tag: 12 });
  const [badResult, goodResult] = await Promise.allSettled([
    scheduler.submit({ pairs: bad, readout: stepReadout }),
    scheduler.submit({ pairs: good, readout: stepReadout }),
  ]);
  assert.equal(badResult.status, "rejected");
  assert.ok((badResult as PromiseRejectedResult).reason instanceof EvaluationError);
  assert.equal(goodResult.status, "fulfilled");
  assertScores((goodResult as PromiseFulfilledResult<{ values: number[][] }>).value, good);
  assert.ok(backend.resets.length >= 1, "the failed lane was reset");
  backend.failOnToken = null;
  const after = stepPairs(11, 4, { tag: 13 });
  assertScores(await scheduler.submit({ pairs: after, readout: stepReadout }), after);
  assert.deepEqual(backend.violations, []);
});

test("steps: random concurrent load with overlapping and identical queries, mixed sizes and cancellations", async () => {
  const rng = createRng(4);
  for (const [lanes, budget, copy] of [
    [1, 16, true],
    [3, 40, true],
    [4, 512, true],
    [5, 64, false],
  ] as const) {
    const backend = new StepFakeBackend(lanes, budget, { copy });
    backend.delayMs = 0;
    const scheduler = new Scheduler(backend);
    const runs: Array<Promise<void>> = [];
    let cancelled = 0;
    for (let r = 0; r < 40; r++) {
      const pairs = stepPairs(rng.int(5), 1 + rng.int(12), {
        tag: r,
        prefixLength: 2 + rng.int(10),
        docLength: () => 1 + rng.int(50),
      });
      // Same query id, different prefix lengths: the tokens differ too, so they must not share.
      const controller = new AbortController();
      const submitted = scheduler.submit({ pairs, readout: stepReadout, signal: controller.signal });
      if (rng.uniform() < 0.25) {
        const delay = rng.int(6);
        setTimeout(() => controller.abort(new CancelledError("client-closed")), delay);
        runs.push(submitted.then(() => undefined, (e: unknown) => void (assert.ok(e instanceof CancelledError), cancelled++)));
      } else {
        runs.push(submitted.then((result) => assertScores(result, pairs)));
      }
      if (rng.uniform() < 0.3) await new Promise((res) => setTimeout(res, rng.int(3)));
    }
    await Promise.all(runs);
    await scheduler.idle();
    assert.deepEqual(backend.violations, [], `lanes ${lanes}, budget ${budget}`);
    assert.deepEqual(scheduler.stats(), { queuedRequests: 0, queuedPairs: 0, queuedTokens: 0, busyLanes: 0, lanes });
    assert.ok(cancelled <= 40);
  }
});

test("steps on the CPU: while a short request runs, steps are its own, the long one's floor only now and then", async () => {
  const backend = new StepFakeBackend(4, 256);
  const scheduler = new Scheduler(backend);
  const large = scheduler.submit({ pairs: stepPairs(1, 60, { tag: 1, docLength: 100 }), readout: stepReadout });
  while (backend.steps.length < 3) await new Promise((r) => setTimeout(r, 1));
  // Water-filling 3 lanes of 103 tokens: 85 each, one short of the budget.
  assert.ok(
    backend.steps.some((s) => s.tokens >= 256 - 3),
    "alone, the long request fills steps",
  );
  const pairs = stepPairs(2, 6, { tag: 2, docLength: 40 });
  const at = backend.steps.length;
  await scheduler.submit({ pairs, readout: stepReadout });
  const smallQuery = pairs[0].tokens[1];
  const during = backend.steps.slice(at + 1).filter((s) => s.items.some((i) => i.query === smallQuery));
  assert.ok(during.length >= 3, `the short request ran over ${during.length} steps`);
  const shared = during.filter((s) => s.items.some((i) => i.query !== smallQuery));
  for (const s of shared) {
    const others = s.items.filter((i) => i.query !== smallQuery).reduce((n, i) => n + i.to - i.from, 0);
    // The floor: (STARVATION_STEPS + 1) eighths of an even share of 256 between 2 requests.
    assert.ok(others <= 3 * (256 / 16), `a step gave the long request ${others} tokens`);
  }
  assert.ok(shared.length <= Math.ceil(during.length / 3), `${shared.length} of ${during.length} steps were shared`);
  await large;
  assert.deepEqual(backend.violations, []);
});

test("shortestFirst: floors where owed, the rest to the least remaining work, nothing more to the others", async () => {
  const { shortestFirst } = await import("../../src/engine/scheduler.js");
  // One request: the whole budget.
  assert.deepEqual(shortestFirst([400], [5000], 256), [256]);
  // A long request (demand 300, 9000 tokens left) and a short one (demand 80, 80 left): the short
  // one gets all of its 80; the long one its floor 16 (256 / 16), and no more.
  assert.deepEqual(shortestFirst([300, 80], [9000, 80], 256), [16, 80]);
  assert.deepEqual(shortestFirst([300, 10], [9000, 10], 256), [16, 10]);
  // No floor owed: the short one alone; three floors owed: 48.
  assert.deepEqual(shortestFirst([300, 80], [9000, 80], 256, [0, 0]), [0, 80]);
  assert.deepEqual(shortestFirst([300, 80], [9000, 80], 256, [3, 0]), [48, 80]);
  // Ties go to the earlier request.
  assert.deepEqual(shortestFirst([100, 100], [100, 100], 128), [100, 8]);
  const rng = createRng(3);
  for (let k = 0; k < 300; k++) {
    const n = 1 + rng.int(6);
    const demands = Array.from({ length: n }, () => 1 + rng.int(400));
    const left = demands.map((d) => d + rng.int(2000));
    const budget = 16 + rng.int(600);
    const floors = demands.map(() => rng.int(4));
    const shares = shortestFirst(demands, left, budget, floors);
    assert.ok(shares.reduce((a, b) => a + b, 0) <= budget);
    shares.forEach((s, g) => assert.ok(s >= 0 && s <= demands[g]));
    const floor = n > 1 ? Math.max(1, Math.floor(budget / (8 * n))) : 0;
    if (n > 1 && budget >= 8 * n) shares.forEach((s, g) => assert.ok(s >= Math.min(demands[g], floor * floors[g]), "floor"));
    const first = demands.map((_, g) => g).sort((a, b) => left[a] - left[b] || a - b)[0];
    shares.forEach((s, g) => g !== first && assert.ok(s <= floor * floors[g], "only the shortest gets more than its floor"));
  }
});

test("evenChunks: equal chunks; a chunk that would leave a short tail is extended or held back and its share spread", async () => {
  const { evenChunks, waterFill } = await import("../../src/engine/scheduler.js");
  // A pair 48 tokens from its end and two fresh ones under 128: 42 each would leave the first a
  // 6-token tail, so it waits and the others take the step in one pass.
  assert.deepEqual(evenChunks([48, 156, 156], 128, 8), [0, 64, 64]);
  assert.deepEqual(evenChunks([43, 43, 43], 128, 8), [43, 43, 0]);
  assert.deepEqual(evenChunks([40, 40, 40], 128, 8), [40, 40, 40]);
  assert.deepEqual(evenChunks([300], 128, 8), [128]);
  assert.deepEqual(evenChunks([130], 128, 8), [128], "a lane alone is never held back");
  const rng = createRng(13);
  for (let k = 0; k < 300; k++) {
    const remaining = Array.from({ length: 1 + rng.int(6) }, () => 1 + rng.int(300));
    const budget = 16 + rng.int(400);
    const shares = evenChunks(remaining, budget, 8);
    const total = shares.reduce((a, b) => a + b, 0);
    assert.ok(total <= budget);
    assert.ok(total > 0, "a step keeps at least one chunk");
    shares.forEach((x, i) => assert.ok(x >= 0 && x <= remaining[i]));
    if (shares.filter((x) => x > 0).length > 1) {
      shares.forEach((x, i) => assert.ok(x === 0 || remaining[i] - x === 0 || remaining[i] - x >= 8, `no short tail: ${remaining} ${budget} -> ${shares}`));
    }
    if (remaining.reduce((a, b) => a + b, 0) <= budget) assert.deepEqual(shares, waterFill(remaining, budget));
  }
});

test("avoidShortTails: a chunk leaving a few tokens is extended when the budget allows, else held back", async () => {
  const { avoidShortTails } = await import("../../src/engine/scheduler.js");
  // 3 lanes of 43 under 128: water-filling gives 43, 43, 42 and a 1-token tail, a pass of its own
  // next step; the short chunk waits whole instead.
  assert.deepEqual(avoidShortTails([43, 43, 43], [43, 43, 42], 128, 8), [43, 43, 0]);
  // Room in the budget: extended to the pair's end.
  assert.deepEqual(avoidShortTails([43, 43, 43], [43, 43, 40], 200, 8), [43, 43, 43]);
  // Tails of at least 8 stay; a step's only chunk is never held back.
  assert.deepEqual(avoidShortTails([100, 50], [60, 40], 100, 8), [60, 40]);
  assert.deepEqual(avoidShortTails([130], [128], 128, 8), [128]);
  const rng = createRng(11);
  for (let k = 0; k < 300; k++) {
    const remaining = Array.from({ length: 1 + rng.int(6) }, () => 1 + rng.int(200));
    const budget = 16 + rng.int(400);
    const { waterFill } = await import("../../src/engine/scheduler.js");
    const shares = waterFill(remaining, budget);
    const out = avoidShortTails(remaining, shares, budget, 8);
    assert.ok(out.reduce((a, b) => a + b, 0) <= budget);
    assert.ok(out.some((x) => x > 0) || shares.every((x) => x === 0), "a step keeps at least one chunk");
    out.forEach((x, i) => {
      assert.ok(x === 0 || x === shares[i] || x === remaining[i]);
      if (x > 0 && out.filter((y) => y > 0).length > 1) assert.ok(remaining[i] - x === 0 || remaining[i] - x >= 8, "no short tail");
    });
  }
});

test("waterFill shares a budget evenly and never exceeds it", async () => {
  const { waterFill } = await import("../../src/engine/scheduler.js");
  assert.deepEqual(waterFill([10, 20, 30], 100), [10, 20, 30]);
  assert.deepEqual(waterFill([10, 200, 300], 100), [10, 45, 45]);
  assert.deepEqual(waterFill([100, 100, 100, 100], 512), [100, 100, 100, 100]);
  assert.deepEqual(waterFill([190, 190, 190, 190], 512), [128, 128, 128, 128]);
  assert.deepEqual(waterFill([5, 5, 5], 2), [1, 1, 0]);
  const rng = createRng(9);
  for (let k = 0; k < 200; k++) {
    const remaining = Array.from({ length: 1 + rng.int(8) }, () => 1 + rng.int(300));
    const budget = 1 + rng.int(600);
    const shares = waterFill(remaining, budget);
    const total = shares.reduce((a, b) => a + b, 0);
    assert.ok(total <= budget);
    shares.forEach((s, i) => assert.ok(s >= 0 && s <= remaining[i]));
    if (remaining.reduce((a, b) => a + b, 0) <= budget) assert.deepEqual(shares, remaining);
    else assert.ok(total > budget - remaining.length, `${total} of ${budget} used`);
  }
});

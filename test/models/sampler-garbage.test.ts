import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { fullCollector, SamplerGarbage } from "../../src/models/sampler-garbage.js";

test("collects once the calls' garbage passes the limit, then counts again from zero", () => {
  let collected = 0;
  // A 1,000-token vocabulary leaves 12,000 bytes a call; the limit is 30,000 bytes.
  const garbage = new SamplerGarbage(1000, 30_000, () => collected++);
  garbage.noteCalls();
  garbage.noteCalls();
  assert.equal(collected, 0, "24,000 bytes are under the limit");
  garbage.noteCalls();
  assert.equal(collected, 1, "36,000 bytes pass it");
  garbage.noteCalls(2);
  assert.equal(collected, 1, "the count restarted at the collection");
  garbage.noteCalls();
  assert.equal(collected, 2);
  assert.equal(garbage.collectionsRun, 2);
});

test("without a collector nothing is counted and nothing throws", () => {
  const garbage = new SamplerGarbage(256_000, 1, null);
  garbage.noteCalls(1000);
  assert.equal(garbage.collectionsRun, 0);
});

test("the full collector really collects: an unreachable object's WeakRef empties", async () => {
  const collect = fullCollector();
  assert.ok(collect, "this Node exposes a full collection at run time");
  // Allocated in a function so no stack slot keeps it; V8 keeps WeakRef targets alive for the
  // rest of the turn that created or dereferenced them, so collect on a later turn.
  const ref = ((): WeakRef<object> => new WeakRef({ payload: new Array(1000).fill(1) }))();
  await nextTurn();
  collect();
  assert.equal(ref.deref(), undefined);
});

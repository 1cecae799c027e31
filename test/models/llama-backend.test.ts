/**
 * The llama.cpp backend's explicit steps on the tiny random Gemma: chunked evaluation, prefix
 * truncation, KV copies between sequences and several lanes in one batch all give the scores of
 * a float64 reference forward; a failed decode leaves no state behind.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { loadLlamaBackend } from "../../src/models/llama-backend.js";
import { familyForArchitecture } from "../../src/families/index.js";
import type { EvaluationLane, ModelBackend, StepEvaluator, StepItem } from "../../src/engine/backend.js";
import type { PairTokens, ScoringFamily } from "../../src/families/types.js";
import { buildTinyGemma, type TinyGemma } from "../support/tiny-gemma.js";
import { referenceRawScore, scoreTolerance } from "../support/reference-pairs.js";

let model: TinyGemma;
let backend: ModelBackend;
let stepper: StepEvaluator;
let family: ScoringFamily;
const limits = { maxLength: 1024, maxTokensPerDoc: 0, truncation: "auto" as const };

const QUERY = "What is the capital of China?";
const DOCS = [
  "The capital of China is Beijing.",
  "Paris is the capital of France.",
  "Gravity is a force that attracts two bodies toward each other.",
  "北京是中华人民共和国的首都。",
];

before(async () => {
  model = await buildTinyGemma();
  backend = await loadLlamaBackend({
    modelPath: model.path,
    device: "cpu",
    threads: 1,
    lanes: 3,
    batchTokens: 64,
    laneCapacity: ({ tokenizer }) => familyForArchitecture("gemma").bind(tokenizer).maxPairTokens(1024),
  });
  assert.ok(backend.stepper, "the causal backend evaluates explicit steps");
  stepper = backend.stepper;
  family = familyForArchitecture("gemma").bind(backend.tokenizer);
});
after(async () => {
  await backend?.dispose();
});

const pairOf = (query: string, document: string): PairTokens => family.buildPair(family.prepareQuery(query, limits), document, limits);
const readout = () => family.readout;

function near(actual: number, query: string, document: string, what: string): void {
  const reference = referenceRawScore(model, query, document);
  assert.ok(Math.abs(actual - reference) <= scoreTolerance(reference), `${what}: ${actual} vs reference ${reference}`);
}

/** Evaluates the pair on `lane` from what it holds, in chunks of at most `chunk` tokens. */
async function evaluateInChunks(lane: EvaluationLane, pair: PairTokens, chunk: number): Promise<number> {
  let from = lane.heldTokens().length;
  let values: number[] | null = null;
  while (from < pair.tokens.length) {
    const to = Math.min(pair.tokens.length, from + chunk);
    const [outcome] = await stepper.step([{ lane, tokens: pair.tokens, from, to, readout: to === pair.tokens.length ? readout() : null }]);
    assert.ok(outcome.ok, outcome.ok ? "" : String(outcome.error));
    values = outcome.values;
    from = to;
  }
  return (values as number[])[0];
}

test("a pair evaluated in chunks of 1, 7 and 64 tokens scores as the reference", async () => {
  const lane = backend.lanes[0];
  const pair = pairOf(QUERY, DOCS[2]);
  const scores: number[] = [];
  for (const chunk of [64, 7, 1]) {
    await stepper.reset(lane);
    scores.push(await evaluateInChunks(lane, pair, chunk));
    assert.deepEqual(lane.heldTokens(), pair.tokens);
  }
  for (const s of scores) near(s, QUERY, DOCS[2], "chunked");
  console.log(`chunk 64/7/1 scores: ${scores.join(", ")} (max spread ${(Math.max(...scores) - Math.min(...scores)).toExponential(2)})`);
});

test("a lane truncated to the query prefix scores the next document as from scratch", async () => {
  const lane = backend.lanes[0];
  await stepper.reset(lane);
  const first = pairOf(QUERY, DOCS[0]);
  near(await evaluateInChunks(lane, first, 64), QUERY, DOCS[0], "first");
  for (const document of DOCS.slice(1)) {
    const pair = pairOf(QUERY, document);
    await stepper.truncate(lane, pair.prefixLength);
    assert.deepEqual(lane.heldTokens(), pair.tokens.slice(0, pair.prefixLength));
    near(await evaluateInChunks(lane, pair, 64), QUERY, document, `after truncation: ${document}`);
  }
});

test("a query prefix copied from another sequence (KV copy) scores as from scratch", async () => {
  assert.ok(stepper.copy, "node-llama-cpp 3.22.1 exposes the KV copy");
  const [source, target] = backend.lanes;
  await stepper.reset(source);
  await stepper.reset(target);
  const donorPair = pairOf(QUERY, DOCS[0]);
  await evaluateInChunks(source, donorPair, 64);
  const pair = pairOf(QUERY, DOCS[3]);
  assert.equal(await stepper.copy(target, source, pair.prefixLength), true);
  assert.deepEqual(target.heldTokens(), pair.tokens.slice(0, pair.prefixLength));
  // The source keeps its own state and can go on.
  assert.deepEqual(source.heldTokens(), donorPair.tokens);
  near(await evaluateInChunks(target, pair, 64), QUERY, DOCS[3], "copied prefix");
  // Copy, then truncate the source below the prefix before the step that performs the copy.
  const third = backend.lanes[2];
  await stepper.reset(third);
  assert.equal(await stepper.copy(third, source, pair.prefixLength), true);
  await stepper.truncate(source, 1);
  const other = pairOf("Explain gravity", DOCS[2]);
  const [a, b] = await stepper.step([
    { lane: source, tokens: other.tokens, from: 1, to: other.tokens.length, readout: readout() },
    { lane: third, tokens: pair.tokens, from: pair.prefixLength, to: pair.tokens.length, readout: readout() },
  ]);
  assert.ok(a.ok && b.ok);
  near((a.values as number[])[0], "Explain gravity", DOCS[2], "source after truncation");
  near((b.values as number[])[0], QUERY, DOCS[3], "copy taken before the source changed");
});

test("three lanes in one step, with chunks of different lengths, each score as the reference", async () => {
  for (const lane of backend.lanes) await stepper.reset(lane);
  const specs: Array<[string, string]> = [
    [QUERY, DOCS[0]],
    ["Explain gravity", DOCS[2]],
    ["北京是中国的首都吗？", DOCS[3]],
  ];
  const pairs = specs.map(([q, d]) => pairOf(q, d));
  const done = [0, 0, 0];
  const scores: Array<number | null> = [null, null, null];
  while (done.some((d, i) => d < pairs[i].tokens.length)) {
    const items: StepItem[] = [];
    pairs.forEach((pair, i) => {
      if (done[i] === pair.tokens.length) return;
      const to = Math.min(pair.tokens.length, done[i] + 10 + 7 * i);
      items.push({ lane: backend.lanes[i], tokens: pair.tokens, from: done[i], to, readout: to === pair.tokens.length ? readout() : null });
    });
    const outcomes = await stepper.step(items);
    outcomes.forEach((o, k) => {
      assert.ok(o.ok, o.ok ? "" : String(o.error));
      const i = items[k].lane.id;
      done[i] = items[k].to;
      if (o.values) scores[i] = o.values[0];
    });
  }
  specs.forEach(([q, d], i) => near(scores[i] as number, q, d, `lane ${i}`));
});

test("a step refuses a lane whose state is not the pair's prefix, and a pair longer than a lane", async () => {
  const lane = backend.lanes[0];
  await stepper.reset(lane);
  const pair = pairOf(QUERY, DOCS[0]);
  const [wrong] = await stepper.step([{ lane, tokens: pair.tokens, from: 5, to: 9, readout: null }]);
  assert.equal(wrong.ok, false, "state mismatch");
  // llama.cpp pads a sequence's cells to a multiple of 256: go past that.
  const long = { tokens: Array.from({ length: backend.info.laneCapacity + 300 }, (_, i) => (i === 0 ? 2 : 300 + (i % 50))), prefixLength: 1 };
  const [tooLong] = await stepper.step([{ lane, tokens: long.tokens, from: 0, to: long.tokens.length, readout: readout() }]);
  assert.equal(tooLong.ok, false, "too long");
  assert.deepEqual(lane.heldTokens(), []);
});

test("a failed decode fails its step; reset lanes then score exactly again", async () => {
  for (const lane of backend.lanes) await stepper.reset(lane);
  const good = pairOf(QUERY, DOCS[1]);
  const bad = { tokens: [...good.tokens.slice(0, -1), backend.tokenizer.vocabularySize + 1000], prefixLength: good.prefixLength };
  const outcomes = await stepper.step([
    { lane: backend.lanes[0], tokens: good.tokens, from: 0, to: good.tokens.length, readout: readout() },
    { lane: backend.lanes[1], tokens: bad.tokens, from: 0, to: bad.tokens.length, readout: readout() },
  ]);
  assert.ok(outcomes.some((o) => !o.ok), "llama.cpp rejects the out-of-vocabulary token");
  for (const lane of backend.lanes) await stepper.reset(lane);
  for (const lane of backend.lanes) assert.deepEqual(lane.heldTokens(), []);
  const again = await Promise.all(backend.lanes.map((lane, i) => evaluateInChunks(lane, pairOf(QUERY, DOCS[i]), 64)));
  again.forEach((s, i) => near(s, QUERY, DOCS[i], `after reset, lane ${i}`));
});

test("the whole-pair lane.evaluate path (used by wrappers) still reuses the held prefix", async () => {
  const lane = backend.lanes[2];
  await stepper.reset(lane);
  const firstPair = pairOf(QUERY, DOCS[0]);
  const first = await lane.evaluate(firstPair.tokens, readout());
  const pair = pairOf(QUERY, DOCS[2]);
  const second = await lane.evaluate(pair.tokens, readout());
  let shared = 0;
  while (firstPair.tokens[shared] === pair.tokens[shared]) shared++;
  assert.ok(shared >= pair.prefixLength);
  assert.equal(second.evaluatedTokens, pair.tokens.length - shared);
  near(first.values[0], QUERY, DOCS[0], "evaluate 1");
  near(second.values[0], QUERY, DOCS[2], "evaluate 2");
});

/**
 * The scheduler on the real llama.cpp backend and the tiny random Gemma, under concurrency: many
 * requests at once with overlapping and identical queries, mixed sizes, small token budgets (so
 * pairs are chunked across steps), prefix copies between sequences and cancellations mid-flight.
 * Every score must equal the float64 reference of the pair evaluated from scratch, and nothing
 * (sequence or KV state) may leak from one request into another.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Scheduler } from "../../src/engine/scheduler.js";
import { loadLlamaBackend } from "../../src/models/llama-backend.js";
import { familyForArchitecture } from "../../src/families/index.js";
import type { ModelBackend } from "../../src/engine/backend.js";
import type { PairTokens, ScoringFamily } from "../../src/families/types.js";
import { CancelledError } from "../../src/server/errors.js";
import { buildTinyGemma, type TinyGemma } from "../support/tiny-gemma.js";
import { referenceRawScore, scoreTolerance } from "../support/reference-pairs.js";
import { loadCorpus } from "../support/spm-vocab.js";
import { createRng } from "../support/rng.js";

let model: TinyGemma;
let backend: ModelBackend;
let family: ScoringFamily;
const limits = { maxLength: 1024, maxTokensPerDoc: 0, truncation: "auto" as const };

/** Reference scores, computed once per distinct pair. */
const references = new Map<string, number>();
function reference(query: string, document: string): number {
  const key = `${query}\u0000${document}`;
  let value = references.get(key);
  if (value === undefined) {
    value = referenceRawScore(model, query, document);
    references.set(key, value);
  }
  return value;
}

before(async () => {
  model = await buildTinyGemma();
  backend = await loadLlamaBackend({
    modelPath: model.path,
    device: "cpu",
    threads: 1,
    lanes: 4,
    batchTokens: 48,
    laneCapacity: ({ tokenizer }) => familyForArchitecture("gemma").bind(tokenizer).maxPairTokens(1024),
  });
  family = familyForArchitecture("gemma").bind(backend.tokenizer);
});
after(async () => {
  await backend?.dispose();
});

function pairsOf(query: string, documents: readonly string[]): PairTokens[] {
  const prepared = family.prepareQuery(query, limits);
  return documents.map((d) => family.buildPair(prepared, d, limits));
}

function checkScores(query: string, documents: readonly string[], values: number[][], what: string): void {
  assert.equal(values.length, documents.length, what);
  documents.forEach((document, i) => {
    const expected = reference(query, document);
    const actual = family.rawScore(values[i]);
    assert.ok(Math.abs(actual - expected) <= scoreTolerance(expected), `${what}, document ${i}: ${actual} vs reference ${expected}`);
  });
}

const corpus = loadCorpus()
  .split(/(?<=[.!?。])\s*/u)
  .map((s) => s.trim())
  .filter((s) => s.length > 0);

test("concurrent requests with shared and identical queries, chunked pairs and cancellations all score as the reference", async () => {
  const rng = createRng(20260101);
  const queries = ["What is the capital of China?", "Explain gravity", "北京是中国的首都吗？", "How does reranking improve RAG answers?"];
  const sentence = () => corpus[rng.int(corpus.length)];
  const document = () => Array.from({ length: 1 + rng.int(3) }, sentence).join(" ");
  for (const [lanesUsed, computeBound] of [
    [4, true],
    [4, false],
  ] as const) {
    const scheduler = new Scheduler(backend, {}, { computeBound, maxLanesPerRequest: lanesUsed });
    const runs: Array<Promise<void>> = [];
    let cancelled = 0;
    let scored = 0;
    for (let r = 0; r < 14; r++) {
      const query = queries[rng.int(queries.length)];
      const documents = Array.from({ length: 1 + rng.int(r % 4 === 0 ? 9 : 4) }, document);
      const controller = new AbortController();
      const job = scheduler.submit({ pairs: pairsOf(query, documents), readout: family.readout, signal: controller.signal });
      if (r % 5 === 2) {
        setTimeout(() => controller.abort(new CancelledError("client-closed")), 5 + rng.int(40));
        runs.push(
          job.then(
            (result) => {
              checkScores(query, documents, result.values, `request ${r} (finished before its cancellation)`);
              scored++;
            },
            (error: unknown) => {
              assert.ok(error instanceof CancelledError, String(error));
              cancelled++;
            },
          ),
        );
      } else {
        runs.push(
          job.then((result) => {
            checkScores(query, documents, result.values, `request ${r}`);
            scored++;
          }),
        );
      }
      if (rng.uniform() < 0.4) await new Promise((resolve) => setTimeout(resolve, rng.int(20)));
    }
    await Promise.all(runs);
    await scheduler.idle();
    assert.deepEqual(scheduler.stats(), { queuedRequests: 0, queuedPairs: 0, queuedTokens: 0, busyLanes: 0, lanes: 4 });
    const counters = scheduler.counters();
    assert.ok(counters.evaluatedTokens < counters.pairTokens, "query prefixes were reused");
    if (computeBound) assert.ok(counters.prefixCopies > 0, "some prefixes were copied between sequences");
    console.log(
      `computeBound ${computeBound}: ${scored} requests scored, ${cancelled} cancelled; ${counters.steps} steps, ` +
        `${counters.evaluatedTokens} of ${counters.pairTokens} pair tokens evaluated, ${counters.prefixCopies} prefix copies`,
    );

    // After the churn (cancelled pairs left half-evaluated on lanes), a second wave on the same
    // lanes: every lane's state must still be exactly what it claims.
    const after = await Promise.all(
      queries.map(async (query, q) => {
        const documents = [corpus[q], corpus[q + 10], `${corpus[q + 20]} ${corpus[q + 30]}`];
        const result = await scheduler.submit({ pairs: pairsOf(query, documents), readout: family.readout });
        checkScores(query, documents, result.values, `second wave, query ${q}`);
      }),
    );
    assert.equal(after.length, queries.length);
  }
});

test("the same pair scored alone, in a batch and after a copied prefix gives the same number", async () => {
  const scheduler = new Scheduler(backend, {}, { computeBound: true, maxLanesPerRequest: 4 });
  const query = "What is the capital of China?";
  const documents = corpus.slice(0, 8);
  const alone: number[] = [];
  for (const document of documents) {
    const { values } = await scheduler.submit({ pairs: pairsOf(query, [document]), readout: family.readout });
    alone.push(family.rawScore(values[0]));
    // A different query in between: the lanes cannot reuse anything.
    await scheduler.submit({ pairs: pairsOf("unrelated", ["x"]), readout: family.readout });
  }
  const together = (await scheduler.submit({ pairs: pairsOf(query, documents), readout: family.readout })).values.map((v) => family.rawScore(v));
  const worst = Math.max(...alone.map((a, i) => Math.abs(a - together[i])));
  console.log(`alone vs batched with reused/copied prefixes: max |difference| ${worst.toExponential(2)}`);
  documents.forEach((d, i) => {
    const expected = reference(query, d);
    assert.ok(Math.abs(together[i] - expected) <= scoreTolerance(expected));
    assert.ok(Math.abs(alone[i] - together[i]) <= scoreTolerance(expected), `document ${i}: ${alone[i]} alone, ${together[i]} batched`);
  });
});

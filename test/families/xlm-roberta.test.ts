/**
 * The XLM-RoBERTa cross-encoder family: FlagEmbedding's pair construction (on a character
 * tokenizer, so every rule is visible), its selection from a GGUF's facts, and, on llama.cpp
 * through the rank backend, the tiny random-weight fixture's tokens against SentencePiece's own
 * `spm_encode` and its scores against the float64 reference forward pass.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ModelBackend, Tokenizer } from "../../src/engine/backend.js";
import { familyForModel } from "../../src/families/index.js";
import { PairTooLongError, type ModelFacts, type PairLimits } from "../../src/families/types.js";
import { xlmRobertaFamily } from "../../src/families/xlm-roberta/family.js";
import { loadLlamaRankBackend } from "../../src/models/llama-rank-backend.js";
import { readModelFacts } from "../../src/models/model-facts.js";
import { xlmrForward, xlmrPairIds, xlmrTokenizeAll, xlmrTolerance } from "../support/reference-xlmr.js";
import { buildTinyXlmr, spmUnavailableReason, storedXlmrWeights, type TinyXlmr } from "../support/tiny-xlmr.js";

// ---------------------------------------------------------------------------
// Pair construction on a character tokenizer: <s> = "^", </s> = "$".

const chars: Tokenizer = {
  tokenize: (text) => [...text].map((c) => c.codePointAt(0) ?? 0),
  detokenize: (ids) => String.fromCodePoint(...ids),
  bosToken: "^".codePointAt(0) ?? 0,
  eosToken: "$".codePointAt(0) ?? 0,
  vocabularySize: 0x110000,
};
const family = xlmRobertaFamily.bind(chars);
const limits = (maxLength: number, more: Partial<PairLimits> = {}): PairLimits => ({ maxLength, maxTokensPerDoc: 0, truncation: "auto", ...more });
const pairText = (query: string, doc: string, l: PairLimits) => chars.detokenize(family.buildPair(family.prepareQuery(query, l), doc, l).tokens);

test("a pair is <s> query </s></s> passage </s>, scored by the classifier head's one logit", () => {
  assert.equal(pairText("q1", "doc", limits(100)), "^q1$$doc$");
  assert.deepEqual(family.readout, { kind: "classifier", outputs: 1 });
  assert.equal(family.defaultMaxLength, 512);
  assert.equal(family.rawScore([1.25]), 1.25);
  assert.equal(family.activate(0), 0.5);
  assert.equal(family.defaultInstruction, undefined);
});

test("the query keeps max_length*3//4 tokens, the passage what is left after the four specials", () => {
  // max_length 16: query limit 12 -> "abcdefghijkl"; passage room 16 - 12 - 4 = 0.
  assert.equal(pairText("abcdefghijklmnop", "xyz", limits(16)), "^abcdefghijkl$$$");
  // query of 3: room 16 - 3 - 4 = 9.
  assert.equal(pairText("abc", "0123456789ABC", limits(16)), "^abc$$012345678$");
  assert.equal(pairText("abc", "0123456789ABC", limits(16)).length, 16);
  // An empty passage and an empty query are still pairs.
  assert.equal(pairText("", "", limits(16)), "^$$$");
});

test("the longest pair is max_length (or the query limit plus the specials, for tiny limits)", () => {
  for (const m of [8, 16, 100, 512]) {
    const longest = pairText("q".repeat(2 * m), "d".repeat(2 * m), limits(m)).length;
    assert.ok(longest <= family.maxPairTokens(m), `max_length ${m}: ${longest}`);
  }
  assert.equal(family.maxPairTokens(512), 512);
  assert.equal(family.maxPairTokens(8), 10);
});

test("max_tokens_per_doc cuts the document's own tokens before the pair is built", () => {
  assert.equal(pairText("q", "0123456789", limits(100, { maxTokensPerDoc: 4 })), "^q$$0123$");
});

test("truncation 'error' refuses what 'auto' would cut, and nothing else", () => {
  const strict = limits(16, { truncation: "error" });
  assert.throws(() => family.prepareQuery("abcdefghijklm", strict), PairTooLongError);
  assert.throws(() => family.buildPair(family.prepareQuery("abc", strict), "0123456789", strict), PairTooLongError);
  assert.equal(pairText("abc", "012345678", strict), "^abc$$012345678$");
});

test("no prefix is reusable: an encoder's states depend on the whole pair", () => {
  const l = limits(64);
  assert.equal(family.buildPair(family.prepareQuery("query", l), "doc", l).prefixLength, 0);
});

// ---------------------------------------------------------------------------
// Selection from GGUF facts.

function facts(over: { tensors?: string[]; metadata?: Record<string, unknown>; architecture?: string } = {}): ModelFacts {
  const metadata: Record<string, unknown> = { "tokenizer.ggml.model": "t5", ...over.metadata };
  const tensors = new Set(over.tensors ?? ["cls.weight", "cls.output.weight"]);
  return {
    architecture: over.architecture ?? "bert",
    name: null,
    fileName: "model.gguf",
    metadata: (key) => metadata[key],
    hasTensor: (t) => tensors.has(t),
  };
}

test("a bert GGUF with a classifier head and a SentencePiece unigram vocabulary is an XLM-R cross-encoder", () => {
  assert.equal(familyForModel(facts()).name, "xlm-roberta-cross-encoder");
  assert.equal(xlmRobertaFamily.readoutKind?.(facts()), "classifier");
});

test("bert embedding models and WordPiece cross-encoders are refused, saying why", () => {
  assert.throws(() => familyForModel(facts({ tensors: [] })), /no classifier head/);
  assert.throws(() => familyForModel(facts({ metadata: { "tokenizer.ggml.model": "bert" } })), /not XLM-RoBERTa's SentencePiece/);
  assert.throws(() => familyForModel(facts({ metadata: { "bert.classifier.output_labels": ["a", "b", "c"] } })), /3 outputs/);
  assert.throws(() => familyForModel(facts({ architecture: "llama" })), /no reranker family serves the architecture "llama"/);
});

test("a max_length beyond the model's positions is refused at start", () => {
  const bound = xlmRobertaFamily.bind(chars, facts({ metadata: { "bert.context_length": 512 } }));
  assert.equal(bound.maxPairTokens(512), 512);
  assert.throws(() => bound.maxPairTokens(1024), /longer than this model's 512 positions/);
  const m3 = xlmRobertaFamily.bind(chars, facts({ metadata: { "bert.context_length": 8192 } }));
  assert.equal(m3.defaultMaxLength, 512);
  assert.equal(m3.maxPairTokens(8192), 8192);
});

// ---------------------------------------------------------------------------
// On llama.cpp: the tiny fixture against SentencePiece and the float64 reference.

const skip = spmUnavailableReason();

/** No "\n" (spm_encode reads lines); seen and unseen scripts, NFKC-foldable characters, odd spacing. */
const TEXTS = [
  "What is the capital of China?",
  "The capital of China is Beijing.",
  "Gravity is a force that attracts two bodies toward each other.",
  "Paris is the capital of France.",
  "Où est la bibliothèque ? À côté de l'église, près du café.",
  "Ärger über Größe: Straße, Fußgänger und Übermut.",
  "北京是中华人民共和国的首都。",
  "東京の天気は晴れです。",
  "서울은 한국의 수도입니다.",
  "Launch 🚀🌕 and smile 😀👍🏽 — done ✅",
  "ﬁne ﬂour, ① ② ③, ＦＵＬＬＷＩＤＴＨ ｶﾀｶﾅ, x² and ½",
  "  leading,  double  spaces,\ttabs\tand trailing   ",
  "",
  " ",
  "Ελληνικά русский עברית العربية हिन्दी",
  "digits 1234567890 and 3.14159",
  "a\u200bb\u00a0c\ufeffd",
  "Yes or No? A: B:",
];

let tiny: TinyXlmr;
let backend: ModelBackend;
let modelFacts: ModelFacts;

before(async () => {
  if (skip) return;
  tiny = await buildTinyXlmr();
  modelFacts = await readModelFacts(tiny.path);
  backend = await loadLlamaRankBackend({ modelPath: tiny.path, device: "cpu", threads: 1, lanes: 2, laneCapacity: () => 512, batchTokens: 512 });
});
after(async () => {
  await backend?.dispose();
});

test("llama.cpp's UGM tokenizer gives Hugging Face's XLM-R ids (spm_encode + 1) for every text", { skip }, () => {
  const expected = xlmrTokenizeAll(tiny.spmModelPath, TEXTS);
  TEXTS.forEach((text, i) => assert.deepEqual(backend.tokenizer.tokenize(text), expected[i], JSON.stringify(text)));
  // The texts reach the unknown token and the normalizer's folds.
  assert.ok(expected.flat().includes(3), "some character is unknown to the tiny vocabulary");
});

test("scores equal the float64 reference forward of FlagEmbedding's pairs, within llama.cpp's f16 tolerance", { skip }, async () => {
  const bound = xlmRobertaFamily.bind(backend.tokenizer, modelFacts);
  const ids = xlmrTokenizeAll(tiny.spmModelPath, TEXTS);
  const long = TEXTS.slice(0, 6).join(" ").repeat(12);
  const [longIds] = xlmrTokenizeAll(tiny.spmModelPath, [long]);
  const cases: Array<[number, number | "long", number]> = [
    [0, 1, 512], [0, 2, 512], [0, 3, 512], [4, 5, 512], [6, 7, 512], [8, 9, 512], [10, 11, 512],
    [12, 13, 512], [14, 15, 512], [16, 17, 512], [0, "long", 512], [0, "long", 64], [3, "long", 16],
  ];
  let worst = 0;
  for (const [qi, di, maxLength] of cases) {
    const l = limits(maxLength);
    const document = di === "long" ? long : TEXTS[di];
    const pair = bound.buildPair(bound.prepareQuery(TEXTS[qi], l), document, l);
    const reference = xlmrPairIds(ids[qi], di === "long" ? longIds : ids[di], maxLength);
    assert.deepEqual(pair.tokens, reference, `pair (${qi}, ${di}, ${maxLength}) tokens`);
    const { values, evaluatedTokens } = await backend.lanes[0].evaluate(pair.tokens, bound.readout);
    assert.equal(evaluatedTokens, pair.tokens.length);
    const expected = xlmrForward(tiny.config, tiny.weights, reference);
    const error = Math.abs(values[0] - expected);
    worst = Math.max(worst, error / (1 + Math.abs(expected)));
    assert.ok(error <= xlmrTolerance(expected), `pair (${qi}, ${di}, ${maxLength}): llama.cpp ${values[0]}, reference ${expected}`);
  }
  console.log(`worst |llama.cpp - reference| / (1 + |reference|) over ${cases.length} pairs: ${worst.toExponential(2)}`);
});

test("pairs scored on several lanes at once get the scores they get alone", { skip }, async () => {
  const bound = xlmRobertaFamily.bind(backend.tokenizer, modelFacts);
  const l = limits(512);
  const query = bound.prepareQuery(TEXTS[0], l);
  const pairs = TEXTS.slice(1, 9).map((d) => bound.buildPair(query, d, l));
  const alone: number[] = [];
  for (const p of pairs) alone.push((await backend.lanes[0].evaluate(p.tokens, bound.readout)).values[0]);
  const together = await Promise.all(pairs.map((p, i) => backend.lanes[i % backend.lanes.length].evaluate(p.tokens, bound.readout)));
  together.forEach((r, i) => assert.equal(r.values[0], alone[i], `pair ${i}`));
});

test("lanes are a whole multiple of the workers, so a step of whole pairs keeps every worker busy to its end", { skip }, async () => {
  const five = await loadLlamaRankBackend({ modelPath: tiny.path, device: "cpu", threads: 2, lanes: 5, laneCapacity: () => 512, batchTokens: 512 });
  try {
    assert.equal(five.info.lanes, 4);
    assert.equal(five.lanes.length, 4);
  } finally {
    await five.dispose();
  }
  const one = await loadLlamaRankBackend({ modelPath: tiny.path, device: "cpu", threads: 2, lanes: 1, laneCapacity: () => 512, batchTokens: 512 });
  try {
    assert.equal(one.info.lanes, 1);
  } finally {
    await one.dispose();
  }
});

test("a GGUF laid out as other tools do (no separator id, no add_sep, no labels, RANK pooling stated) scores the same: rerankd builds <s> q </s></s> d </s> itself", { skip }, async () => {
  const noSep = await buildTinyXlmr({ legacy: true });
  const other = await loadLlamaRankBackend({ modelPath: noSep.path, device: "cpu", threads: 1, lanes: 1, laneCapacity: () => 512, batchTokens: 512 });
  try {
    const noSepFacts = await readModelFacts(noSep.path);
    assert.equal(familyForModel(noSepFacts).name, "xlm-roberta-cross-encoder");
    const bound = xlmRobertaFamily.bind(other.tokenizer, noSepFacts);
    const l = limits(512);
    const pair = bound.buildPair(bound.prepareQuery(TEXTS[0], l), TEXTS[1], l);
    const [q, d] = xlmrTokenizeAll(tiny.spmModelPath, [TEXTS[0], TEXTS[1]]);
    assert.deepEqual(pair.tokens, xlmrPairIds(q, d));
    const { values } = await other.lanes[0].evaluate(pair.tokens, bound.readout);
    const expected = xlmrForward(noSep.config, noSep.weights, pair.tokens);
    assert.ok(Math.abs(values[0] - expected) <= xlmrTolerance(expected), `${values[0]} vs ${expected}`);
  } finally {
    await other.dispose();
  }
});

test("an f16 GGUF scores like the reference run on its f16-rounded weights", { skip }, async () => {
  const half = await buildTinyXlmr({ dtype: "f16" });
  const other = await loadLlamaRankBackend({ modelPath: half.path, device: "cpu", threads: 1, lanes: 1, laneCapacity: () => 512, batchTokens: 512 });
  try {
    const bound = xlmRobertaFamily.bind(other.tokenizer, await readModelFacts(half.path));
    const stored = storedXlmrWeights(half.weights, "f16");
    const l = limits(512);
    for (const [qi, di] of [[0, 1], [4, 5], [8, 9]]) {
      const pair = bound.buildPair(bound.prepareQuery(TEXTS[qi], l), TEXTS[di], l);
      const { values } = await other.lanes[0].evaluate(pair.tokens, bound.readout);
      const expected = xlmrForward(half.config, stored, pair.tokens);
      assert.ok(Math.abs(values[0] - expected) <= xlmrTolerance(expected), `pair (${qi}, ${di}): ${values[0]} vs ${expected}`);
    }
  } finally {
    await other.dispose();
  }
});

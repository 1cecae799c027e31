/**
 * The Qwen3-Reranker family: the model card's pair construction (on a character tokenizer, so each
 * rule is visible), its selection from a GGUF's facts, and on llama.cpp the tiny random-weight
 * fixture's tokens against an independent byte-level BPE and its scores against the float64
 * reference, through both readouts: the LM head's yes/no logits on the causal backend, and the
 * classifier head of llama.cpp's own reranker conversion on the rank backend.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ModelBackend, Tokenizer } from "../../src/engine/backend.js";
import { familyForModel, families } from "../../src/families/index.js";
import { PairTooLongError, type FamilyDefinition, type ModelFacts, type PairLimits } from "../../src/families/types.js";
import { loadLlamaBackend } from "../../src/models/llama-backend.js";
import { loadLlamaRankBackend } from "../../src/models/llama-rank-backend.js";
import { readModelFacts } from "../../src/models/model-facts.js";
import { QWEN3_DEFAULT_INSTRUCTION, qwen3PairIds, qwen3RawScore, qwen3Tolerance } from "../support/reference-qwen3.js";
import { buildTinyQwen3, storedQwen3Weights, type TinyQwen3 } from "../support/tiny-qwen3.js";

const qwen3 = families.find((f) => f.name === "qwen3-reranker") as FamilyDefinition;

// ---------------------------------------------------------------------------
// Pair construction on a character tokenizer. Template special tokens become one id each
// (0xE000 + index), so the template's structure is checkable.

const SPECIALS = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"];
const chars: Tokenizer = {
  tokenize: (text) => [...text].map((c) => c.codePointAt(0) ?? 0),
  tokenizeTemplate: (text) => {
    const ids: number[] = [];
    for (let i = 0; i < text.length; ) {
      const s = SPECIALS.findIndex((t) => text.startsWith(t, i));
      if (s >= 0) {
        ids.push(0xe000 + s);
        i += SPECIALS[s].length;
      } else {
        ids.push(text.codePointAt(i) ?? 0);
        i += 1;
      }
    }
    return ids;
  },
  detokenize: (ids) => ids.map((id) => (id >= 0xe000 && id < 0xe000 + SPECIALS.length ? SPECIALS[id - 0xe000] : String.fromCodePoint(id))).join(""),
  bosToken: null,
  eosToken: null,
  vocabularySize: 0x110000,
};
// On characters, "yes" and "no" are not single tokens; a tokenizer that maps them so stands in.
const charsWithAnswers: Tokenizer = {
  ...chars,
  tokenize: (text) => (text === "yes" ? [0xf001] : text === "no" ? [0xf002] : chars.tokenize(text)),
};
const family = qwen3.bind(charsWithAnswers);
const limits = (maxLength: number, more: Partial<PairLimits> = {}): PairLimits => ({ maxLength, maxTokensPerDoc: 0, truncation: "auto", ...more });
const PREFIX_TEXT =
  '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n';
const SUFFIX_TEXT = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
const overhead = chars.tokenizeTemplate?.(PREFIX_TEXT + SUFFIX_TEXT).length ?? 0;
const pairText = (query: string, doc: string, l: PairLimits) => chars.detokenize(family.buildPair(family.prepareQuery(query, l), doc, l).tokens);

test("a pair is the card's chat template with the default instruction; the score is sigmoid(yes - no)", () => {
  assert.equal(
    pairText("q?", "doc.", limits(8192)),
    `${PREFIX_TEXT}<Instruct>: ${QWEN3_DEFAULT_INSTRUCTION}\n<Query>: q?\n<Document>: doc.${SUFFIX_TEXT}`,
  );
  assert.deepEqual(family.readout, { kind: "last-token-logits", tokenIds: [0xf001, 0xf002] });
  assert.equal(family.rawScore([2.5, -1]), 3.5);
  assert.equal(family.activate(0), 0.5);
  assert.equal(family.defaultMaxLength, 8192);
  assert.equal(family.defaultInstruction, QWEN3_DEFAULT_INSTRUCTION);
  // The template's special tokens are single ids; the user's text never is.
  const tokens = family.buildPair(family.prepareQuery("<|im_end|>", limits(8192)), "<think>", limits(8192)).tokens;
  assert.equal(tokens.filter((t) => t >= 0xe000 && t < 0xe010).length, chars.tokenizeTemplate?.(PREFIX_TEXT + SUFFIX_TEXT).filter((t) => t >= 0xe000).length);
});

test("a request's instruction replaces the default", () => {
  assert.match(pairText("q", "d", limits(8192, { instruction: "Find code that answers the question" })), /<Instruct>: Find code that answers the question\n<Query>: q\n/);
});

test("placeholders in the user's text stay text", () => {
  assert.match(
    pairText("what is {instruction}?", "{document} {query}", limits(8192, { instruction: "match {query} and {document}" })),
    /<Instruct>: match \{query\} and \{document\}\n<Query>: what is \{instruction\}\?\n<Document>: \{document\} \{query\}<\|im_end\|>/,
  );
});

/** Characters of the body before the document, for the query "what?" and the default instruction. */
const queryPart = `<Instruct>: ${QWEN3_DEFAULT_INSTRUCTION}\n<Query>: what?\n<Document>: `.length;

test("truncation cuts the body's end to max_length minus the template, and the pair is never longer", () => {
  const m = overhead + queryPart + 13;
  const text = pairText("what?", "0123456789".repeat(10), limits(m));
  assert.equal([...(chars.tokenizeTemplate?.(text) ?? [])].length, m);
  assert.ok(text.endsWith(`<Document>: 0123456789012${SUFFIX_TEXT}`), text);
  // A budget smaller than the query part cuts into the query itself (the card truncates the whole body).
  assert.ok(pairText("what?", "doc", limits(overhead + 20)).endsWith(`<Instruct>: ${QWEN3_DEFAULT_INSTRUCTION.slice(0, 8)}${SUFFIX_TEXT}`));
  for (const maxLength of [1, overhead, overhead + 5, 8192]) {
    const n = family.buildPair(family.prepareQuery("x".repeat(50), limits(maxLength)), "y".repeat(9000), limits(maxLength)).tokens.length;
    assert.ok(n <= family.maxPairTokens(maxLength), `max_length ${maxLength}: ${n}`);
  }
});

test("the query's tokens (template prefix + instruction + query) are the reusable prefix", () => {
  const l = limits(8192);
  const query = family.prepareQuery("what?", l);
  const a = family.buildPair(query, "first", l);
  const b = family.buildPair(query, "second", l);
  assert.ok(a.prefixLength > 100);
  assert.deepEqual(a.tokens.slice(0, a.prefixLength), b.tokens.slice(0, b.prefixLength));
  assert.equal(chars.detokenize(a.tokens.slice(0, a.prefixLength)).endsWith("<Document>: "), true);
});

test("max_tokens_per_doc cuts the document before templating; 'error' truncation refuses cut pairs", () => {
  assert.match(pairText("q", "0123456789", limits(8192, { maxTokensPerDoc: 3 })), /<Document>: 012<\|im_end\|>/);
  const strict = limits(overhead + queryPart + 20, { truncation: "error" });
  assert.throws(() => family.buildPair(family.prepareQuery("what?", strict), "d".repeat(100), strict), PairTooLongError);
  assert.throws(() => family.prepareQuery("q".repeat(100), strict), PairTooLongError);
  assert.doesNotThrow(() => family.buildPair(family.prepareQuery("what?", strict), "d".repeat(20), strict));
});

test("text is NFC-normalized first, as Qwen's tokenizer.json does", () => {
  assert.equal(pairText("e\u0301", "A\u030a", limits(8192)), pairText("\u00e9", "\u00c5", limits(8192)));
});

// ---------------------------------------------------------------------------
// Selection.

function facts(over: { tensors?: string[]; metadata?: Record<string, unknown>; name?: string | null; fileName?: string } = {}): ModelFacts {
  const tensors = new Set(over.tensors ?? ["token_embd.weight"]);
  return {
    architecture: "qwen3",
    name: over.name === undefined ? "Qwen3 0.6B" : over.name,
    fileName: over.fileName ?? "qwen3-0.6b.gguf",
    metadata: (key) => over.metadata?.[key],
    hasTensor: (t) => tensors.has(t),
  };
}

test("a plain Qwen3 LLM is refused unless --family says it is a reranker", () => {
  assert.throws(() => familyForModel(facts()), /nothing in it says it is a reranker.*--family qwen3-reranker/);
  assert.equal(familyForModel(facts(), "qwen3-reranker").name, "qwen3-reranker");
  assert.throws(() => familyForModel(facts(), "xlm-roberta-cross-encoder"), /serves bert models/);
  assert.throws(() => familyForModel(facts(), "nope"), /unknown family "nope"/);
});

test("a Qwen3 GGUF is a reranker by its name, file name, rank pooling, classifier head or rerank template", () => {
  for (const f of [
    facts({ name: "Qwen3-Reranker-0.6B" }),
    facts({ name: null, fileName: "qwen3-reranker-4b-q8_0.gguf" }),
    facts({ metadata: { "qwen3.pooling_type": 4 } }),
    facts({ tensors: ["cls.output.weight", "token_embd.weight"] }),
    facts({ metadata: { "tokenizer.chat_template.rerank": "..." } }),
  ]) {
    assert.equal(familyForModel(f).name, "qwen3-reranker");
  }
});

test("llama.cpp's reranker conversion (cls.output, no LM head) is read through its classifier head", () => {
  assert.equal(qwen3.readoutKind?.(facts({ name: "Qwen3-Reranker" })), "last-token-logits");
  assert.equal(qwen3.readoutKind?.(facts({ tensors: ["cls.output.weight", "output.weight"] })), "last-token-logits");
  const converted = facts({ tensors: ["cls.output.weight"], metadata: { "qwen3.classifier.output_labels": ["no", "yes"] } });
  assert.equal(qwen3.readoutKind?.(converted), "classifier");
  const bound = qwen3.bind(charsWithAnswers, converted);
  assert.deepEqual(bound.readout, { kind: "classifier", outputs: 2 });
  // [P(no), P(yes)]: raw = ln P(yes) - ln P(no) = logit(yes) - logit(no).
  assert.ok(Math.abs(bound.rawScore([1 / (1 + Math.exp(2)), 1 / (1 + Math.exp(-2))]) - 2) < 1e-12);
  assert.ok(Number.isFinite(bound.rawScore([1, 0])));
});

// ---------------------------------------------------------------------------
// On llama.cpp.

const TEXTS: Array<[string, string]> = [
  ["What is the capital of China?", "The capital of China is Beijing."],
  ["What is the capital of China?", "Paris is the capital of France."],
  ["Explain gravity", "Gravity is a force that attracts two bodies toward each other."],
  ["Où est la bibliothèque ?", "La bibliothèque est à côté de l'église, près du café."],
  ["Ärger über Größe", "Straße, Fußgänger und Übermut: ÄÖÜ äöü ß."],
  ["北京是中国的首都吗？", "北京是中华人民共和国的首都。"],
  ["서울은 어디에 있나요?", "서울은 한국의 수도입니다."],
  ["emoji 🚀", "Launch 🚀🌕 and smile 😀👍🏽 — done ✅"],
  ["What is vLLM?", ""],
  ["", "An empty query still scores."],
  ["Tabs\tand\nnewlines", "line one\nline two\n\n\tindented\r\n"],
  ["it's, I'LL, we've", "digits 1234567890 and 3.14159"],
  ["decomposed e\u0301 and A\u030a", "composed \u00e9 and \u00c5"],
  ["control text", "a document saying <|im_end|> and <|im_start|>assistant"],
];

let lmHead: TinyQwen3;
let causal: ModelBackend;
let lmFacts: ModelFacts;

before(async () => {
  lmHead = await buildTinyQwen3({ name: "tiny-Qwen3-Reranker" });
  lmFacts = await readModelFacts(lmHead.path);
  causal = await loadLlamaBackend({ modelPath: lmHead.path, device: "cpu", threads: 1, lanes: 2, laneCapacity: () => 2048, batchTokens: 512 });
});
after(async () => {
  await causal?.dispose();
});

async function checkScores(model: TinyQwen3, backend: ModelBackend, modelFacts: ModelFacts, cases: Array<[string, string, number, string?]>): Promise<number> {
  const bound = qwen3.bind(backend.tokenizer, modelFacts);
  let worst = 0;
  for (const [query, doc, maxLength, instruction] of cases) {
    const l = limits(maxLength, instruction ? { instruction } : {});
    const pair = bound.buildPair(bound.prepareQuery(query, l), doc, l);
    const ids = qwen3PairIds(model.tokenizer, query, doc, maxLength, instruction);
    assert.deepEqual(pair.tokens, ids, `tokens of ${JSON.stringify([query, doc, maxLength])}`);
    const { values } = await backend.lanes[0].evaluate(pair.tokens, bound.readout);
    const reference = qwen3RawScore(model.config, model.weights, ids, model.yes, model.no);
    const served = bound.rawScore(values);
    worst = Math.max(worst, Math.abs(served - reference));
    assert.ok(Math.abs(served - reference) <= qwen3Tolerance(reference), `${JSON.stringify([query, doc, maxLength])}: ${served} vs ${reference}`);
  }
  return worst;
}

const CASES: Array<[string, string, number, string?]> = [
  ...TEXTS.map(([q, d]): [string, string, number] => [q, d, 8192]),
  ["What is the capital of China?", "The capital of China is Beijing. ".repeat(40), 200],
  ["long query ".repeat(30), "short passage", 160],
  ["What is the capital of China?", "The capital of China is Beijing.", 8192, "Judge whether the passage names a city"],
];

test("the template's special tokens and the body's text tokenize as Hugging Face's byte-level BPE does", () => {
  const special = causal.tokenizer.tokenizeTemplate;
  assert.ok(special);
  assert.deepEqual(special("<|im_start|>user\n<think>\n\n</think>\n\n"), lmHead.tokenizer.encode("<|im_start|>user\n<think>\n\n</think>\n\n"));
  for (const [q, d] of TEXTS) {
    for (const text of [q, d]) assert.deepEqual(causal.tokenizer.tokenize(text.normalize("NFC")), lmHead.tokenizer.encode(text, "non-special"), JSON.stringify(text));
  }
});

test("raw scores (logit yes - logit no) equal the float64 reference, LM head on the causal backend", async () => {
  const worst = await checkScores(lmHead, causal, lmFacts, CASES);
  console.log(`max |served - reference| over ${CASES.length} pairs (LM head): ${worst.toExponential(2)}`);
});

test("llama.cpp's reranker conversion (2-row cls.output, no LM head, RANK pooling) scores the same on the rank backend", async () => {
  const converted = await buildTinyQwen3({ layout: "rerank-head", tied: false, name: "tiny-Qwen3-Reranker" });
  const convertedFacts = await readModelFacts(converted.path);
  assert.equal(familyForModel(convertedFacts).name, "qwen3-reranker");
  assert.equal(qwen3.readoutKind?.(convertedFacts), "classifier");
  const rank = await loadLlamaRankBackend({ modelPath: converted.path, device: "cpu", threads: 1, lanes: 1, laneCapacity: () => 2048, batchTokens: 512 });
  try {
    const worst = await checkScores(converted, rank, convertedFacts, CASES.slice(0, 6));
    console.log(`max |served - reference| (classifier head): ${worst.toExponential(2)}`);
  } finally {
    await rank.dispose();
  }
});

test("an untied f16 GGUF (output.weight) scores like the reference on its f16-rounded weights", async () => {
  const untied = await buildTinyQwen3({ tied: false, dtype: "f16", name: "tiny-Qwen3-Reranker" });
  const backend = await loadLlamaBackend({ modelPath: untied.path, device: "cpu", threads: 1, lanes: 1, laneCapacity: () => 2048, batchTokens: 512 });
  try {
    const stored = { ...untied, weights: storedQwen3Weights(untied.weights, "f16") };
    await checkScores(stored, backend, await readModelFacts(untied.path), CASES.slice(0, 4));
  } finally {
    await backend.dispose();
  }
});

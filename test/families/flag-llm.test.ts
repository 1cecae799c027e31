import { test } from "node:test";
import assert from "node:assert/strict";
import { flagLlmFamily, type FlagLlmTemplate } from "../../src/families/flag-llm/family.js";
import { familyForArchitecture, families } from "../../src/families/index.js";
import { PairTooLongError, type PairLimits } from "../../src/families/types.js";
import type { Tokenizer } from "../../src/engine/backend.js";

/** One token per character, BOS = 1: pairs can be read back as text. */
const chars: Tokenizer = {
  tokenize: (text) => [...text].map((c) => c.codePointAt(0) ?? 0),
  detokenize: (ids) => ids.map((id) => (id === 1 ? "^" : String.fromCodePoint(id))).join(""),
  bosToken: 1,
  eosToken: 2,
  vocabularySize: 0x110000,
};

const template: FlagLlmTemplate = {
  name: "test",
  architectures: ["test"],
  queryPrefix: "A: ",
  passagePrefix: "B: ",
  separator: "\n",
  prompt: "P?",
  scoreToken: "Yes",
  defaultMaxLength: 1024,
};
const family = flagLlmFamily(template).bind(chars);
const limits = (maxLength: number, extra: Partial<PairLimits> = {}): PairLimits => ({
  maxLength,
  maxTokensPerDoc: 0,
  truncation: "auto",
  ...extra,
});
const pairText = (query: string, doc: string, l: PairLimits) =>
  chars.detokenize(family.buildPair(family.prepareQuery(query, l), doc, l).tokens);

test("a short pair is [bos] A: query \\n B: passage \\n prompt", () => {
  assert.equal(pairText("q1", "doc", limits(100)), "^A: q1\nB: doc\nP?");
});

test("the score token is the first token of the score text", () => {
  assert.deepEqual(family.readout, { kind: "last-token-logits", tokenIds: ["Y".codePointAt(0)] });
});

test("the query keeps max_length*3//4 tokens of 'A: ' + query", () => {
  // max_length 8: query limit 6 tokens -> "A: abc"; first = 7 tokens with BOS;
  // second may keep 8 + 3 (sep + prompt) - 7 = 4 tokens: "\nB: ".
  assert.equal(pairText("abcdefghij", "xyz", limits(8)), "^A: abc\nB: \nP?");
});

test("the passage is cut to max_length, then the pair to max_length + len(sep) + len(prompt)", () => {
  // max_length 10: query "A: q" (4) + BOS = 5; second limit 10 + 3 - 5 = 8: "\nB: 0123".
  assert.equal(pairText("q", "0123456789abcdef", limits(10)), "^A: q\nB: 0123\nP?");
  assert.ok(family.maxPairTokens(10) >= pairText("q", "0123456789abcdef", limits(10)).length);
});

test("the prefix is the query part, identical for every document of a query", () => {
  const l = limits(64);
  const query = family.prepareQuery("same", l);
  const a = family.buildPair(query, "first document", l);
  const b = family.buildPair(query, "second", l);
  assert.equal(a.prefixLength, "^A: same".length);
  assert.deepEqual(a.tokens.slice(0, a.prefixLength), b.tokens.slice(0, b.prefixLength));
});

test("max_tokens_per_doc cuts the document's own tokens, not the template's", () => {
  assert.equal(pairText("q", "abcdefgh", limits(100, { maxTokensPerDoc: 3 })), "^A: q\nB: abc\nP?");
  assert.equal(pairText("q", "ab", limits(100, { maxTokensPerDoc: 3 })), "^A: q\nB: ab\nP?");
});

test("truncation 'error' refuses a pair that would be cut, and accepts one that fits", () => {
  const l = limits(10, { truncation: "error" });
  assert.throws(() => family.buildPair(family.prepareQuery("q", l), "0123456789abcdef", l), PairTooLongError);
  assert.throws(() => family.prepareQuery("a very long query indeed", l), PairTooLongError);
  assert.equal(pairText("q", "01", l), "^A: q\nB: 01\nP?");
});

test("the Gemma template is FlagEmbedding's prompt, served for the gemma architecture", () => {
  const gemma = familyForArchitecture("gemma");
  assert.equal(gemma.name, "bge-reranker-v2-gemma");
  const bound = gemma.bind(chars);
  assert.equal(bound.defaultMaxLength, 1024);
  const text = chars.detokenize(bound.buildPair(bound.prepareQuery("q", limits(1024)), "d", limits(1024)).tokens);
  assert.equal(
    text,
    "^A: q\nB: d\nGiven a query A and a passage B, determine whether the passage contains an answer to the query by providing a prediction of either 'Yes' or 'No'.",
  );
  assert.throws(() => familyForArchitecture("llama"), /supported: gemma/);
  assert.ok(families.length >= 1);
});

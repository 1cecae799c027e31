// The fixture vocabulary's layout and the reference tokenizer's basic behaviour
// (agreement with llama.cpp itself is checked in fixture.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { referenceTokenize } from "./reference-tokenizer.js";
import { FIRST_BYTE_ID, REQUIRED_PIECES, SPACE_PIECE, SPECIAL_IDS, TokenType, buildSpmVocab, byteTokenText, loadCorpus } from "./spm-vocab.js";

const vocab = buildSpmVocab(loadCorpus());
const id = (piece: string): number => {
  const found = vocab.pieceToId.get(piece);
  assert.ok(found !== undefined, `missing piece ${JSON.stringify(piece)}`);
  return found;
};

describe("fixture SPM vocabulary", () => {
  it("is laid out like Gemma's: specials, 256 byte tokens, characters, merges", () => {
    assert.deepEqual(vocab.tokens.slice(0, 4), ["<pad>", "<eos>", "<bos>", "<unk>"]);
    assert.deepEqual(vocab.types.slice(0, 4), [TokenType.CONTROL, TokenType.CONTROL, TokenType.CONTROL, TokenType.UNKNOWN]);
    assert.deepEqual(SPECIAL_IDS, { pad: 0, eos: 1, bos: 2, unk: 3 });
    for (let byte = 0; byte < 256; byte++) {
      assert.equal(vocab.tokens[FIRST_BYTE_ID + byte], byteTokenText(byte));
      assert.equal(vocab.types[FIRST_BYTE_ID + byte], TokenType.BYTE);
    }
    assert.equal(byteTokenText(0x0a), "<0x0A>");
    assert.ok(vocab.tokens.length >= 600 && vocab.tokens.length <= 1000, `size ${vocab.tokens.length}`);
    assert.equal(new Set(vocab.tokens).size, vocab.tokens.length);
    assert.ok(vocab.learnedMerges >= 250);
  });

  it("contains every corpus character, with spaces as ▁ and newline as its own piece", () => {
    for (const char of new Set(Array.from(loadCorpus()))) id(char === " " ? SPACE_PIECE : char);
    assert.equal(vocab.pieceToId.get(" "), undefined);
    id("\n");
    id("🙂");
    id("北");
  });

  it("scores merges by rank, below-all-merges for single characters", () => {
    const charScores: number[] = [];
    const mergeScores: number[] = [];
    vocab.tokens.forEach((piece, i) => {
      if (vocab.types[i] !== TokenType.NORMAL) return;
      (Array.from(piece).length === 1 ? charScores : mergeScores).push(vocab.scores[i]);
    });
    assert.deepEqual(mergeScores, mergeScores.map((_, rank) => -rank));
    assert.ok(Math.max(...charScores) < Math.min(...mergeScores));
  });

  it("tokenizes the reranker's pieces as single tokens", () => {
    for (const piece of REQUIRED_PIECES) assert.deepEqual(referenceTokenize(vocab, piece), [id(piece)]);
    const prompt = "Given a query A and a passage B, determine whether the passage contains an answer to the query by providing a prediction of either 'Yes' or 'No'.";
    const ids = referenceTokenize(vocab, prompt);
    assert.ok(ids.length < Array.from(prompt).length / 3, `prompt should use multi-character pieces, got ${ids.length} tokens`);
    assert.deepEqual(referenceTokenize(vocab, "A: q\nB: p").slice(0, 1), [id("A:")]);
  });

  it("makes missing required pieces reachable through their prefixes", () => {
    const extended = buildSpmVocab(loadCorpus(), { requiredPieces: ["Zürichxyz"] });
    const target = extended.pieceToId.get("Zürichxyz");
    assert.ok(target !== undefined);
    assert.deepEqual(referenceTokenize(extended, "Zürichxyz"), [target]);
    assert.throws(() => buildSpmVocab(loadCorpus(), { requiredPieces: ["Ж"] }), /absent from the corpus/);
  });
});

describe("reference SPM tokenizer", () => {
  it("returns nothing for empty text", () => {
    assert.deepEqual(referenceTokenize(vocab, ""), []);
  });

  it("falls back to UTF-8 byte tokens for characters outside the vocabulary", () => {
    // "Ж" (U+0416) is D0 96 in UTF-8 and is not in the corpus.
    assert.deepEqual(referenceTokenize(vocab, "Ж"), [FIRST_BYTE_ID + 0xd0, FIRST_BYTE_ID + 0x96]);
    assert.deepEqual(referenceTokenize(vocab, "🦀"), [0xf0, 0x9f, 0xa6, 0x80].map((b) => FIRST_BYTE_ID + b));
  });

  it("breaks score ties towards the leftmost pair", () => {
    // Hand-made vocabulary where "ab" and "bc" would both apply to "abc" with the same score.
    const pieces = ["a", "b", "c", "ab", "bc"];
    const tied = { pieceToId: new Map(pieces.map((p, i) => [p, i])), scores: [0, 0, 0, -1, -1] };
    assert.deepEqual(referenceTokenize(tied, "abc"), [3, 2]);
    const preferRight = { pieceToId: tied.pieceToId, scores: [0, 0, 0, -2, -1] };
    assert.deepEqual(referenceTokenize(preferRight, "abc"), [0, 4]);
  });
});

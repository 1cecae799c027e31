// A small SentencePiece-BPE-style vocabulary learned deterministically from
// test/support/corpus.txt, laid out like Gemma's real tokenizer:
//
//   0 <pad>, 1 <eos>, 2 <bos> (control), 3 <unk> (unknown),
//   4..259 byte tokens <0x00>..<0xFF> (byte fallback),
//   then every character of the corpus (space written as "▁"),
//   then the learned BPE merges, then any required pieces not learned.
//
// Scores: merge number r gets -r, so earlier (more frequent) merges win in the SPM
// tokenizer; required pieces continue that sequence. Single characters get scores
// below every merge, as in SentencePiece models; llama.cpp's SPM tokenizer only ever
// looks up the score of a concatenation of two symbols, so these are never consulted.

import { readFileSync } from "node:fs";
import { arr, bool, str, u32, type GgufMetadata } from "../../src/models/gguf/types.js";

/** llama_token_type values stored in tokenizer.ggml.token_type. */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

export const SPACE_PIECE = "\u2581"; // "▁", SentencePiece's visible space

export const SPECIAL_IDS = { pad: 0, eos: 1, bos: 2, unk: 3 } as const;
export const FIRST_BYTE_ID = 4;

/** Pieces the reranker prompt needs as single tokens (FlagEmbedding's "A: ", "B: " and the Yes/No answer). */
export const REQUIRED_PIECES = ["Yes", "No", "A:", "B:"] as const;

export interface SpmVocab {
  tokens: string[];
  scores: number[];
  types: TokenType[];
  pieceToId: ReadonlyMap<string, number>;
  /** Number of BPE merges learned from the corpus (before required pieces). */
  learnedMerges: number;
}

export interface SpmVocabOptions {
  /** Maximum number of merges to learn (default 420). */
  merges?: number;
  /** Pieces that must exist and be reachable by merges (default REQUIRED_PIECES). */
  requiredPieces?: readonly string[];
}

/**
 * The GGUF tokenizer keys of a Gemma-style SentencePiece vocabulary (llama.cpp's "llama" tokenizer,
 * BOS added, no space prefix), as the fixture and the bench models both write them.
 */
export function spmTokenizerMetadata(vocab: { tokens: readonly string[]; scores: readonly number[]; types: readonly number[] }): GgufMetadata {
  return {
    "tokenizer.ggml.model": str("llama"),
    "tokenizer.ggml.tokens": arr("string", vocab.tokens),
    "tokenizer.ggml.scores": arr("f32", vocab.scores),
    "tokenizer.ggml.token_type": arr("i32", vocab.types),
    "tokenizer.ggml.bos_token_id": u32(SPECIAL_IDS.bos),
    "tokenizer.ggml.eos_token_id": u32(SPECIAL_IDS.eos),
    "tokenizer.ggml.unknown_token_id": u32(SPECIAL_IDS.unk),
    "tokenizer.ggml.padding_token_id": u32(SPECIAL_IDS.pad),
    "tokenizer.ggml.add_bos_token": bool(true),
    "tokenizer.ggml.add_eos_token": bool(false),
    "tokenizer.ggml.add_space_prefix": bool(false),
  };
}

export function loadCorpus(): string {
  return readFileSync(new URL("./corpus.txt", import.meta.url), "utf8");
}

export function byteTokenText(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`;
}

export function buildSpmVocab(corpus: string, options: SpmVocabOptions = {}): SpmVocab {
  const maxMerges = options.merges ?? 420;
  const requiredPieces = options.requiredPieces ?? REQUIRED_PIECES;
  const text = corpus.replaceAll(" ", SPACE_PIECE);

  const tokens: string[] = [];
  const scores: number[] = [];
  const types: TokenType[] = [];
  const pieceToId = new Map<string, number>();
  const add = (piece: string, score: number, type: TokenType): void => {
    if (pieceToId.has(piece)) throw new Error(`duplicate piece ${JSON.stringify(piece)}`);
    pieceToId.set(piece, tokens.length);
    tokens.push(piece);
    scores.push(score);
    types.push(type);
  };

  add("<pad>", 0, TokenType.CONTROL);
  add("<eos>", 0, TokenType.CONTROL);
  add("<bos>", 0, TokenType.CONTROL);
  add("<unk>", 0, TokenType.UNKNOWN);
  for (let byte = 0; byte < 256; byte++) add(byteTokenText(byte), 0, TokenType.BYTE);

  const merges = learnMerges(text, maxMerges);
  const extraMerges = piecesToMakeReachable(requiredPieces, new Set([...Array.from(text), ...merges]));
  const totalMerges = merges.length + extraMerges.length;

  const chars = [...new Set(Array.from(text))].sort(compareCodePoints);
  chars.forEach((char, index) => add(char, -(totalMerges + index), TokenType.NORMAL));
  [...merges, ...extraMerges].forEach((piece, rank) => add(piece, -rank, TokenType.NORMAL));

  return { tokens, scores, types, pieceToId, learnedMerges: merges.length };
}

/**
 * Classic BPE training on whitespace-prefixed words: count adjacent symbol pairs
 * weighted by word frequency, merge the most frequent (ties: smallest string),
 * repeat. Returns the new pieces in merge order; a merge that recreates an existing
 * piece is applied but not listed again.
 */
function learnMerges(text: string, maxMerges: number): string[] {
  const wordCounts = new Map<string, number>();
  for (const word of splitWords(text)) wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
  const words = [...wordCounts].map(([word, count]) => ({ symbols: Array.from(word), count }));

  const known = new Set(Array.from(text));
  const merges: string[] = [];
  while (merges.length < maxMerges) {
    const pairCounts = new Map<string, { left: string; right: string; count: number }>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        const entry = pairCounts.get(key);
        if (entry) entry.count += count;
        else pairCounts.set(key, { left: symbols[i], right: symbols[i + 1], count });
      }
    }
    let best: { key: string; left: string; right: string; count: number } | undefined;
    for (const [key, entry] of pairCounts) {
      if (!best || entry.count > best.count || (entry.count === best.count && key < best.key)) best = { key, ...entry };
    }
    if (!best || best.count < 2) break;

    const merged = best.left + best.right;
    for (const word of words) word.symbols = mergePair(word.symbols, best.left, best.right);
    if (!known.has(merged)) {
      known.add(merged);
      merges.push(merged);
    }
  }
  return merges;
}

/** Words as SentencePiece sees them: a run of spaces keeps one "▁" for the next word; newlines group alone. */
function splitWords(text: string): string[] {
  const pattern = new RegExp(`\\n+|${SPACE_PIECE}+(?=${SPACE_PIECE})|${SPACE_PIECE}?[^${SPACE_PIECE}\\n]+|${SPACE_PIECE}+`, "gu");
  return text.match(pattern) ?? [];
}

function mergePair(symbols: string[], left: string, right: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
      out.push(left + right);
      i++;
    } else {
      out.push(symbols[i]);
    }
  }
  return out;
}

/**
 * For each required piece missing from `known`, the pieces to add so the SPM
 * tokenizer can build it: every missing prefix of it (longest last), so e.g. "Yes"
 * is reached from "Y","e","s" via "Ye" then "Ye"+"s". Characters must already be known.
 */
function piecesToMakeReachable(required: readonly string[], known: Set<string>): string[] {
  const added: string[] = [];
  for (const piece of required) {
    // A learned piece is reachable already: its two halves are learned pieces or characters.
    if (known.has(piece)) continue;
    const chars = Array.from(piece);
    for (const char of chars) {
      if (!known.has(char)) throw new Error(`required piece ${JSON.stringify(piece)} uses ${JSON.stringify(char)}, absent from the corpus`);
    }
    for (let length = 2; length <= chars.length; length++) {
      const prefix = chars.slice(0, length).join("");
      if (!known.has(prefix)) {
        known.add(prefix);
        added.push(prefix);
      }
    }
  }
  return added;
}

function compareCodePoints(a: string, b: string): number {
  return (a.codePointAt(0) ?? 0) - (b.codePointAt(0) ?? 0);
}

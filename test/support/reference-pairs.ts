/**
 * FlagEmbedding's pair construction for the LLM reranker, written out from API.md independently of
 * src/families: the reference the server's tokens and scores are checked against.
 */
import { referenceTokenize } from "./reference-tokenizer.js";
import { SPECIAL_IDS } from "./spm-vocab.js";
import type { TinyGemma } from "./tiny-gemma.js";
import { referenceForward } from "./reference-gemma.js";

export const FLAG_PROMPT =
  "Given a query A and a passage B, determine whether the passage contains an answer to the query by providing a prediction of either 'Yes' or 'No'.";

export function referencePairIds(model: TinyGemma, query: string, passage: string, maxLength = 1024): number[] {
  return flagPairIds((text) => referenceTokenize(model.vocab, text), SPECIAL_IDS.bos, query, passage, maxLength);
}

/** FlagEmbedding's pair ids with any tokenizer (each piece tokenized alone, no special tokens). */
export function flagPairIds(
  tok: (text: string) => number[],
  bos: number,
  query: string,
  passage: string,
  maxLength = 1024,
): number[] {
  const q = tok(`A: ${query}`).slice(0, Math.floor((maxLength * 3) / 4));
  const p = tok(`B: ${passage}`).slice(0, maxLength);
  const sep = tok("\n");
  const pr = tok(FLAG_PROMPT);
  const first = [bos, ...q];
  const second = [...sep, ...p].slice(0, Math.max(0, maxLength + sep.length + pr.length - first.length));
  return [...first, ...second, ...sep, ...pr];
}

/** The raw "Yes" logit of the reference forward for a pair. */
export function referenceRawScore(model: TinyGemma, query: string, passage: string, maxLength = 1024): number {
  const yes = referenceTokenize(model.vocab, "Yes")[0];
  return referenceForward(model.config, model.weights, referencePairIds(model, query, passage, maxLength)).logitFor(yes);
}

/** The tolerance of the server issue: llama.cpp keeps K/V in f16 and computes GELU from an f16 table. */
export const scoreTolerance = (reference: number): number => 5e-3 + 2e-3 * Math.abs(reference);

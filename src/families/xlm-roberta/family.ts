/**
 * XLM-RoBERTa cross-encoders (`XLMRobertaForSequenceClassification`: BAAI/bge-reranker-v2-m3,
 * bge-reranker-base, bge-reranker-large), as FlagEmbedding's encoder-only reranker
 * (`FlagEmbedding/inference/reranker/encoder_only/base.py`) builds and scores a pair:
 *
 *   q      = tok(query)[:max_length*3//4]
 *   p      = tok(passage)[:max_length]
 *   p      = p[:max(0, max_length - len(q) - 4)]        # prepare_for_model(truncation='only_second')
 *   ids    = [<s>] + q + [</s>, </s>] + p + [</s>]
 *   score  = out_proj(tanh(dense(hidden[0])))           # one logit; sigmoid when activated
 *
 * tok() is the model's SentencePiece tokenizer without special tokens. On llama.cpp the model is a
 * `bert` GGUF whose `cls` / `cls.output` tensors are that head, run by RANK pooling on the first
 * token: the backend returns the logit (a "classifier" readout). The sequence is built here, never
 * by llama.cpp or node-llama-cpp (whose ranking helper writes the second </s> only when the GGUF
 * names a separator id).
 */
import type { Tokenizer } from "../../engine/backend.js";
import {
  PairTooLongError,
  sigmoid,
  type FamilyDefinition,
  type ModelFacts,
  type PairLimits,
  type PairTokens,
  type PreparedQuery,
  type ScoringFamily,
} from "../types.js";

/** Special tokens added around a pair: <s>, </s></s> between, </s> at the end. */
const PAIR_SPECIAL_TOKENS = 4;

export const XLM_ROBERTA_MODEL_IDS = ["BAAI/bge-reranker-v2-m3", "BAAI/bge-reranker-base", "BAAI/bge-reranker-large"] as const;

export const xlmRobertaFamily: FamilyDefinition = {
  name: "xlm-roberta-cross-encoder",
  architectures: ["bert"],
  modelIds: XLM_ROBERTA_MODEL_IDS,
  rejects: (model) => rejectsModel(model),
  readoutKind: () => "classifier",
  bind: (tokenizer, model) => bindXlmRoberta(tokenizer, model),
};

function rejectsModel(model: ModelFacts): string | null {
  if (!model.hasTensor("cls.output.weight")) {
    return "it has no classifier head (no cls.output.weight tensor): a bert GGUF without one is an embedding model, not a cross-encoder";
  }
  const tokenizerModel = model.metadata("tokenizer.ggml.model");
  if (tokenizerModel !== "t5") {
    return `its tokenizer is "${String(tokenizerModel)}", not XLM-RoBERTa's SentencePiece unigram ("t5" in GGUF)`;
  }
  const labels = model.metadata("bert.classifier.output_labels");
  if (Array.isArray(labels) && labels.length !== 1) {
    return `its classifier has ${labels.length} outputs; a reranker's has one`;
  }
  return null;
}

/** The longest pair the model's position embeddings allow (XLM-R: max_position_embeddings - 2). */
export function xlmRobertaPositions(model: ModelFacts): number | null {
  const n = model.metadata("bert.context_length");
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : null;
}

function bindXlmRoberta(tokenizer: Tokenizer, model: ModelFacts | undefined): ScoringFamily {
  const cls = tokenizer.bosToken;
  const sep = tokenizer.eosToken;
  if (cls === null || sep === null) {
    throw new Error("an XLM-RoBERTa cross-encoder needs <s> and </s> (the GGUF's BOS and EOS tokens); this model names none");
  }
  const positions = model ? xlmRobertaPositions(model) : null;
  const queryLimit = (maxLength: number) => Math.floor((maxLength * 3) / 4);

  return {
    name: "xlm-roberta-cross-encoder",
    // FlagEmbedding's and the model cards' max_length; bge-reranker-v2-m3 allows up to 8192 (--max-length).
    defaultMaxLength: Math.min(512, positions ?? 512),
    readout: { kind: "classifier", outputs: 1 },

    maxPairTokens(maxLength) {
      // len(q) + len(p) + 4 <= max_length whenever len(q) <= max_length*3//4 leaves room for the specials.
      const longest = Math.max(maxLength, queryLimit(maxLength) + PAIR_SPECIAL_TOKENS);
      if (positions !== null && longest > positions) {
        throw new Error(`max_length ${maxLength} is longer than this model's ${positions} positions; start it with --max-length ${positions} or less`);
      }
      return longest;
    },

    prepareQuery(query: string, limits: PairLimits): PreparedQuery {
      const all = tokenizer.tokenize(query);
      const limit = queryLimit(limits.maxLength);
      if (all.length > limit && limits.truncation === "error") throw new PairTooLongError(all.length, limit, "query");
      return { text: query, tokens: all.slice(0, limit), truncated: all.length > limit };
    },

    buildPair(query: PreparedQuery, document: string, limits: PairLimits): PairTokens {
      let passage = tokenizer.tokenize(document);
      // max_tokens_per_doc: the document's own tokens, cut before the pair is built.
      if (limits.maxTokensPerDoc > 0) passage = passage.slice(0, limits.maxTokensPerDoc);
      const room = Math.max(0, limits.maxLength - query.tokens.length - PAIR_SPECIAL_TOKENS);
      const kept = Math.min(passage.length, limits.maxLength, room);
      if (kept < passage.length && limits.truncation === "error") throw new PairTooLongError(passage.length, room, "document");
      const tokens = [cls, ...query.tokens, sep, sep, ...passage.slice(0, kept), sep];
      // An encoder attends both ways: no token's state depends on the query alone, so nothing is reusable.
      return { tokens, prefixLength: 0 };
    },

    rawScore: (values) => values[0],
    activate: sigmoid,
  };
}

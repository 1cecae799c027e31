/**
 * FlagEmbedding's decoder-only LLM reranker (BaseLLMReranker / FlagLLMReranker), parameterised by
 * a template file so other rerankers of the same shape need data, not code:
 *
 *   q      = tok(queryPrefix + query)[:max_length*3//4]
 *   p      = tok(passagePrefix + passage)[:max_length]
 *   first  = [bos] + q;   second = tok(sep) + p
 *   second = second[:max(0, max_length + len(sep) + len(prompt) - len(first))]
 *   ids    = first + second + tok(sep) + tok(prompt)
 *   score  = logits[last, tok(scoreToken)[0]]
 *
 * Every tok() is the model's tokenizer on that text alone, without special tokens.
 */
import type { Tokenizer } from "../../engine/backend.js";
import {
  PairTooLongError,
  sigmoid,
  type FamilyDefinition,
  type PairLimits,
  type PairTokens,
  type PreparedQuery,
  type ScoringFamily,
} from "../types.js";

export interface FlagLlmTemplate {
  name: string;
  architectures: string[];
  queryPrefix: string;
  passagePrefix: string;
  separator: string;
  prompt: string;
  scoreToken: string;
  defaultMaxLength: number;
}

export function flagLlmFamily(template: FlagLlmTemplate): FamilyDefinition {
  return {
    name: template.name,
    architectures: template.architectures,
    bind: (tokenizer) => bindFlagLlm(template, tokenizer),
  };
}

function bindFlagLlm(template: FlagLlmTemplate, tokenizer: Tokenizer): ScoringFamily {
  const separator = tokenizer.tokenize(template.separator);
  const prompt = tokenizer.tokenize(template.prompt);
  const suffix = [...separator, ...prompt];
  const scoreTokenIds = tokenizer.tokenize(template.scoreToken);
  if (scoreTokenIds.length === 0) {
    throw new Error(`the model's vocabulary cannot encode the score token "${template.scoreToken}"`);
  }
  const bos = tokenizer.bosToken === null ? [] : [tokenizer.bosToken];

  const queryLimit = (maxLength: number) => Math.floor((maxLength * 3) / 4);

  return {
    name: template.name,
    defaultMaxLength: template.defaultMaxLength,
    readout: { kind: "last-token-logits", tokenIds: [scoreTokenIds[0]] },

    maxPairTokens: (maxLength) => maxLength + 2 * suffix.length + bos.length,

    prepareQuery(query: string, limits: PairLimits): PreparedQuery {
      const all = tokenizer.tokenize(template.queryPrefix + query);
      const limit = queryLimit(limits.maxLength);
      if (all.length > limit && limits.truncation === "error") {
        throw new PairTooLongError(all.length, limit, "query");
      }
      return { text: query, tokens: [...bos, ...all.slice(0, limit)], truncated: all.length > limit };
    },

    buildPair(query: PreparedQuery, document: string, limits: PairLimits): PairTokens {
      const passage = capDocument(document, limits.maxTokensPerDoc, tokenizer);
      const passageTokens = tokenizer.tokenize(template.passagePrefix + passage);
      const first = query.tokens;
      const secondLimit = Math.max(0, limits.maxLength + suffix.length - first.length);
      const second = [...separator, ...passageTokens.slice(0, limits.maxLength)];
      const cut = passageTokens.length > limits.maxLength || second.length > secondLimit;
      if (cut && limits.truncation === "error") {
        throw new PairTooLongError(separator.length + passageTokens.length, secondLimit, "document");
      }
      const tokens = [...first, ...second.slice(0, secondLimit), ...suffix];
      return { tokens, prefixLength: first.length };
    },

    rawScore: (values) => values[0],
    activate: sigmoid,
  };
}

/**
 * max_tokens_per_doc: the document's own tokens are cut before templating, so the cap counts the
 * document alone, not the template's "B: " prefix.
 */
function capDocument(document: string, maxTokens: number, tokenizer: Tokenizer): string {
  if (maxTokens <= 0) return document;
  const tokens = tokenizer.tokenize(document);
  return tokens.length <= maxTokens ? document : tokenizer.detokenize(tokens.slice(0, maxTokens));
}

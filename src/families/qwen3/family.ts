/**
 * Qwen3-Reranker (Qwen/Qwen3-Reranker-0.6B/4B/8B, `Qwen3ForCausalLM` checkpoints), as its model
 * card's usage code builds and scores a pair, parameterised by a template file:
 *
 *   body   = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
 *   ids    = tok(prefix) + tok(body)[:max_length - len(tok(prefix)) - len(tok(suffix))] + tok(suffix)
 *   score  = softmax([logit("no"), logit("yes")])[1] at the last position
 *          = sigmoid(logit("yes") - logit("no"));   raw score: logit("yes") - logit("no")
 *
 * The body is NFC-normalized first, as Qwen's Hugging Face tokenizer does (llama.cpp does not).
 * tok(prefix) and tok(suffix) parse their special tokens (<|im_start|>, <|im_end|>); the body's
 * user text (instruction, query, document) is tokenized literally, so a document cannot close the
 * template's turn. The body is tokenized whole, as the card does (BPE merges may cross the
 * "<Document>: " boundary), and truncation cuts its end.
 *
 * Two readouts, by what the GGUF holds:
 *  - the LM head's "yes" and "no" logits at the last position (a GGUF with its LM head: ours, or a
 *    plain conversion), on the causal backend, where a query's tokens are evaluated once for all
 *    its documents;
 *  - llama.cpp's reranker conversion (pooling RANK, a 2-row `cls.output` of the "yes" and "no" LM
 *    head rows, and for the 4B/8B no LM head at all): its classifier readout, which llama.cpp
 *    returns as softmax probabilities [P(yes), P(no)] (order from the GGUF's output labels).
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
  type Readout,
  type ScoringFamily,
} from "../types.js";

export interface Qwen3RerankerTemplate {
  name: string;
  architectures: string[];
  modelIds: string[];
  prefix: string;
  /** Holds {instruction}, {query} and, last, {document}. */
  body: string;
  suffix: string;
  defaultInstruction: string;
  yesToken: string;
  noToken: string;
  defaultMaxLength: number;
  /** Unicode normalization the Hugging Face tokenizer applies first (Qwen2's tokenizer.json: NFC); llama.cpp does not. */
  normalize?: "NFC";
}

/** llama.cpp's LLAMA_POOLING_TYPE_RANK, as stored in `<arch>.pooling_type`. */
const POOLING_RANK = 4;

export function qwen3RerankerFamily(template: Qwen3RerankerTemplate): FamilyDefinition {
  const [queryPartTemplate, rest] = splitOnce(template.body, "{document}");
  if (rest !== "") throw new Error(`template ${template.name}: {document} must end the body`);
  return {
    name: template.name,
    architectures: template.architectures,
    modelIds: template.modelIds,
    rejects: (model) => rejectsModel(template, model),
    readoutKind: (model) => classifierLabels(model) === null ? "last-token-logits" : "classifier",
    bind: (tokenizer, model) => bindQwen3(template, queryPartTemplate, tokenizer, model),
  };
}

function rejectsModel(template: Qwen3RerankerTemplate, model: ModelFacts): string | null {
  const arch = model.architecture;
  const says =
    model.metadata(`${arch}.pooling_type`) === POOLING_RANK ||
    model.hasTensor("cls.output.weight") ||
    model.metadata("tokenizer.chat_template.rerank") !== undefined ||
    /reranker/i.test(`${model.name ?? ""} ${model.fileName}`);
  if (says) return null;
  return (
    `nothing in it says it is a reranker (no rank pooling, no classifier head, no "reranker" in its name), and a plain ` +
    `Qwen3 LLM scores nothing useful; pass --family ${template.name} if it is a Qwen3-Reranker`
  );
}

/**
 * For llama.cpp's reranker conversion (a `cls.output` head and no LM head of its own): where
 * "yes" and "no" sit among the classifier's outputs. null: the GGUF has its LM head, use it.
 */
function classifierLabels(model: ModelFacts | undefined): { yes: number; no: number; outputs: number } | null {
  if (!model || !model.hasTensor("cls.output.weight") || model.hasTensor("output.weight")) return null;
  const labels = model.metadata(`${model.architecture}.classifier.output_labels`);
  const names = Array.isArray(labels) ? labels.map(String) : ["yes", "no"];
  const yes = names.indexOf("yes");
  const no = names.indexOf("no");
  if (yes < 0 || no < 0) throw new Error(`the GGUF's classifier outputs are [${names.join(", ")}], not "yes" and "no"`);
  return { yes, no, outputs: names.length };
}

function bindQwen3(
  template: Qwen3RerankerTemplate,
  queryPartTemplate: string,
  tokenizer: Tokenizer,
  model: ModelFacts | undefined,
): ScoringFamily {
  const special = tokenizer.tokenizeTemplate;
  if (!special) throw new Error(`${template.name} needs a tokenizer that parses the template's special tokens`);
  const prefix = special(template.prefix);
  const suffix = special(template.suffix);
  const yes = singleToken(tokenizer, template.yesToken);
  const no = singleToken(tokenizer, template.noToken);
  const labels = classifierLabels(model);
  const readout: Readout = labels ? { kind: "classifier", outputs: labels.outputs } : { kind: "last-token-logits", tokenIds: [yes, no] };
  const rawScore = labels
    ? // llama.cpp returns the two-way softmax; its log-ratio is logit(yes) - logit(no). A probability
      // that underflowed float32 is clamped to the smallest subnormal, so the score stays finite.
      (values: readonly number[]) => Math.log(Math.max(values[labels.yes], 1e-45)) - Math.log(Math.max(values[labels.no], 1e-45))
    : (values: readonly number[]) => values[0] - values[1];

  const budget = (maxLength: number) => Math.max(0, maxLength - prefix.length - suffix.length);
  // One pass over the template, so an instruction or query that contains "{query}" stays text.
  const queryText = (query: string, instruction: string) =>
    queryPartTemplate.replace(/\{(instruction|query)\}/g, (_, key: string) => (key === "instruction" ? instruction : query));
  const normalize = (text: string) => (template.normalize ? text.normalize(template.normalize) : text);
  /** The query's part of the body (text and tokens), per prepared query. */
  const parts = new WeakMap<PreparedQuery, { text: string; tokens: readonly number[] }>();

  return {
    name: template.name,
    defaultMaxLength: template.defaultMaxLength,
    readout,
    defaultInstruction: template.defaultInstruction,

    maxPairTokens: (maxLength) => Math.max(maxLength, prefix.length + suffix.length),

    prepareQuery(query: string, limits: PairLimits): PreparedQuery {
      const text = queryText(query, limits.instruction ?? template.defaultInstruction);
      const tokens = tokenizer.tokenize(normalize(text));
      const limit = budget(limits.maxLength);
      if (tokens.length > limit && limits.truncation === "error") throw new PairTooLongError(tokens.length, limit, "query");
      const prepared: PreparedQuery = { text: query, tokens: [...prefix, ...tokens.slice(0, limit)], truncated: tokens.length > limit };
      parts.set(prepared, { text, tokens });
      return prepared;
    },

    buildPair(query: PreparedQuery, document: string, limits: PairLimits): PairTokens {
      const part = parts.get(query);
      if (!part) throw new Error(`${template.name}: the query was not prepared by this family`);
      const passage = capDocument(document, limits.maxTokensPerDoc, tokenizer);
      const body = tokenizer.tokenize(normalize(part.text + passage));
      const limit = budget(limits.maxLength);
      if (body.length > limit && limits.truncation === "error") {
        throw new PairTooLongError(body.length - commonPrefixLength(body, part.tokens), limit - part.tokens.length, "document");
      }
      const kept = body.slice(0, limit);
      return { tokens: [...prefix, ...kept, ...suffix], prefixLength: prefix.length + commonPrefixLength(kept, part.tokens) };
    },

    rawScore,
    activate: sigmoid,
  };
}

function singleToken(tokenizer: Tokenizer, text: string): number {
  const ids = tokenizer.tokenize(text);
  if (ids.length !== 1) throw new Error(`the model's vocabulary has no single token for "${text}" (got ${ids.length} tokens)`);
  return ids[0];
}

function splitOnce(text: string, marker: string): [string, string] {
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`template body has no ${marker}`);
  return [text.slice(0, at), text.slice(at + marker.length)];
}

/** max_tokens_per_doc: the document's own tokens are cut before templating. */
function capDocument(document: string, maxTokens: number, tokenizer: Tokenizer): string {
  if (maxTokens <= 0) return document;
  const tokens = tokenizer.tokenize(document);
  return tokens.length <= maxTokens ? document : tokenizer.detokenize(tokens.slice(0, maxTokens));
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * A model family says how a (query, document) pair becomes tokens and how the model's output
 * becomes a score. The server and the scheduler never look inside: they see token sequences,
 * the readout the backend must return for them, and a number back.
 */
import type { Tokenizer } from "../engine/backend.js";

export type TruncationMode = "auto" | "error";

export interface PairLimits {
  /** The family's max_length (FlagEmbedding's meaning) for this request. */
  maxLength: number;
  /** Cut each document to this many tokens before templating; 0 = no cap. */
  maxTokensPerDoc: number;
  /** "auto": truncate as the reference implementation does; "error": refuse a pair that would be cut. */
  truncation: TruncationMode;
  /**
   * The request's task instruction, for families whose template has one (Qwen3-Reranker's
   * `<Instruct>`); absent = the family's default. Only passed to families with a defaultInstruction.
   */
  instruction?: string;
}

/** One pair, ready for the model. */
export interface PairTokens {
  tokens: number[];
  /**
   * How many leading tokens depend on the query alone: every pair built from the same prepared
   * query starts with the same `prefixLength` tokens, whose evaluation can be reused.
   */
  prefixLength: number;
}

/** A query tokenized once and reused for each of its documents. */
export interface PreparedQuery {
  readonly text: string;
  readonly tokens: readonly number[];
  /** Whether the query itself had to be cut to fit. */
  readonly truncated: boolean;
}

/**
 * What the backend reads off the evaluated sequence: the logits of these vocabulary ids at the
 * last position (causal LLM rerankers). Families of other kinds (classifier heads) add variants.
 */
export interface LastTokenLogitsReadout {
  kind: "last-token-logits";
  tokenIds: readonly number[];
}
/**
 * The model's own sequence-classification head (llama.cpp's RANK pooling: e.g. the `cls` and
 * `cls.output` tensors of an XLM-RoBERTa cross-encoder on its first token): its `outputs` values.
 * Evaluated whole, never with a reused prefix.
 */
export interface ClassifierReadout {
  kind: "classifier";
  outputs: number;
}
export type Readout = LastTokenLogitsReadout | ClassifierReadout;

/**
 * What a family may look at to decide whether it serves a model file, before the model is loaded
 * (GGUF header facts only).
 */
export interface ModelFacts {
  /** GGUF general.architecture, e.g. "bert". */
  architecture: string;
  /** general.name, or null. */
  name: string | null;
  /** The file's base name, e.g. "Qwen3-Reranker-0.6B.Q8_0.gguf" (names often say what a model is). */
  fileName: string;
  /** A GGUF metadata value (number, bigint, string, boolean or array of them), undefined when absent. */
  metadata(key: string): unknown;
  hasTensor(name: string): boolean;
}

export interface ScoringFamily {
  /** e.g. "bge-reranker-v2-gemma" */
  readonly name: string;
  readonly defaultMaxLength: number;
  readonly readout: Readout;
  /** The longest token sequence buildPair can return for a given max_length (sizes the KV cache). */
  maxPairTokens(maxLength: number): number;
  prepareQuery(query: string, limits: PairLimits): PreparedQuery;
  /** Throws PairTooLongError when limits.truncation is "error" and the pair would be cut. */
  buildPair(query: PreparedQuery, document: string, limits: PairLimits): PairTokens;
  /** The raw score (what use_activation=false returns) from the readout values. */
  rawScore(readoutValues: readonly number[]): number;
  /** The activation use_activation=true applies to the raw score. */
  activate(raw: number): number;
  /**
   * The instruction used when a request gives none, for families whose template takes one
   * (Qwen3-Reranker); undefined = the family takes no instruction.
   */
  readonly defaultInstruction?: string;
}

/** A family definition, bound to a loaded model's tokenizer at start-up. */
export interface FamilyDefinition {
  readonly name: string;
  /** GGUF `general.architecture` values this family serves. */
  readonly architectures: readonly string[];
  /** Hugging Face model ids this family is known to serve (for help and error messages). */
  readonly modelIds?: readonly string[];
  /**
   * Why this family does not serve a model of one of its architectures (e.g. a plain LLM where a
   * reranker is needed), or null when it does. Absent: every model of its architectures.
   */
  rejects?(model: ModelFacts): string | null;
  /** The kind of readout bind() will choose for this model: decides the backend. Absent: "last-token-logits". */
  readoutKind?(model: ModelFacts): Readout["kind"];
  bind(tokenizer: Tokenizer, model?: ModelFacts): ScoringFamily;
}

export class PairTooLongError extends Error {
  constructor(
    readonly tokens: number,
    readonly maxTokens: number,
    readonly part: "query" | "document",
  ) {
    super(`the ${part} is ${tokens} tokens, over the limit of ${maxTokens}`);
    this.name = "PairTooLongError";
  }
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

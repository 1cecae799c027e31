/**
 * The boundary between the scheduler and whatever runs the model (TEI's router/backend split).
 * The scheduler owns queues and fairness; a backend owns weights, KV state and kernels.
 */
import type { Readout } from "../families/types.js";

export interface Tokenizer {
  /** The text's tokens, without special tokens (no BOS/EOS), special-token text kept literal. */
  tokenize(text: string): number[];
  /**
   * Tokens of trusted template text, with special-token text (e.g. "<|im_start|>") parsed as the
   * special tokens; no BOS/EOS added. Families whose template holds special tokens need it.
   */
  tokenizeTemplate?(text: string): number[];
  detokenize(tokens: readonly number[]): string;
  readonly bosToken: number | null;
  readonly eosToken: number | null;
  readonly vocabularySize: number;
}

/**
 * One evaluation lane with its own KV state (a llama.cpp sequence). Lanes of one backend are
 * evaluated together: evaluations started on several lanes in the same tick share a batch.
 */
export interface EvaluationLane {
  readonly id: number;
  /** The tokens whose evaluation the lane currently holds. */
  heldTokens(): readonly number[];
  /**
   * Evaluates `tokens` and returns the readout's values. Leading tokens the lane already holds are
   * reused, not evaluated again; the return says how many tokens were actually evaluated.
   */
  evaluate(tokens: readonly number[], readout: Readout): Promise<{ values: number[]; evaluatedTokens: number }>;
  /** Forget all held state (after a failure, or to free memory). */
  reset(): Promise<void>;
}

export interface BackendInfo {
  /** GGUF general.architecture, e.g. "gemma". */
  architecture: string;
  /** Human-readable model name from the file, if any. */
  name: string | null;
  device: string;
  threads: number;
  lanes: number;
  /** Most tokens one lane can hold. */
  laneCapacity: number;
  /** Most tokens evaluated in one step across all lanes. */
  batchTokens: number;
  fileSizeBytes: number;
}

export interface ModelBackend {
  readonly info: BackendInfo;
  readonly tokenizer: Tokenizer;
  readonly lanes: readonly EvaluationLane[];
  /**
   * Present when the backend evaluates explicit steps (the llama.cpp causal backend): the
   * scheduler then assembles every step itself. Absent (or dropped by a wrapper), the scheduler
   * falls back to whole-pair `lane.evaluate` calls started together.
   */
  readonly stepper?: StepEvaluator;
  dispose(): Promise<void>;
}

/** One lane's share of an evaluation step. */
export interface StepItem {
  lane: EvaluationLane;
  /** The pair's whole token sequence. */
  tokens: readonly number[];
  /** The lane holds exactly tokens[0, from) when the step starts; the step evaluates tokens[from, to). */
  from: number;
  to: number;
  /** The readout of the last token, when `to` is the pair's end; null for a chunk that does not end it. */
  readout: Readout | null;
}

/** What became of one item of a step: the readout's values (null for a chunk), or why it failed. */
export type StepOutcome = { ok: true; values: number[] | null } | { ok: false; error: unknown };

/**
 * Explicit steps: the scheduler decides which lanes evaluate which tokens; the backend decodes all
 * of a step's items in one batch (one llama_decode when they fit its batch size). Lanes are
 * prepared between steps, never while a step runs.
 */
export interface StepEvaluator {
  /** Evaluates every item together. Never rejects: each item gets its outcome. */
  step(items: readonly StepItem[]): Promise<StepOutcome[]>;
  /** Drops what `lane` holds from token `keep` on (its first `keep` tokens stay evaluated). */
  truncate(lane: EvaluationLane, keep: number): Promise<void>;
  /**
   * Makes `target` hold the first `keep` tokens `source` holds by copying their KV state, without
   * evaluating anything; false when the copy did not happen (the target then holds nothing).
   * Absent when the backend cannot copy state between lanes.
   */
  copy?(target: EvaluationLane, source: EvaluationLane, keep: number): Promise<boolean>;
  /** Forgets everything `lane` holds, KV state included (after a failure). */
  reset(lane: EvaluationLane): Promise<void>;
}

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
  dispose(): Promise<void>;
}

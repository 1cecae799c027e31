import type { GgmlType } from "../gguf/types.js";

export type OutType = "f32" | "f16" | "q8_0";
export const OUT_TYPES: readonly OutType[] = ["f32", "f16", "q8_0"];

export interface ConvertProgress {
  /** Tensors written so far, of `total`. */
  done: number;
  total: number;
  /** GGUF name of the tensor just written. */
  tensor?: string;
}

export interface ConvertOptions {
  /** Hugging Face checkpoint folder (config.json, tokenizer files, safetensors). */
  dir: string;
  /** Output .gguf path; written to a temporary file and renamed only when complete. */
  out: string;
  outtype: OutType;
  onProgress?: (progress: ConvertProgress) => void;
  /** general.name (default: the folder name). */
  name?: string;
}

export interface ConvertResult {
  out: string;
  /** GGUF general.architecture written. */
  architecture: "gemma" | "bert" | "qwen3";
  outtype: OutType;
  tensorCount: number;
  /** Storage type of each GGUF tensor. */
  tensorTypes: Record<string, GgmlType>;
  /**
   * "tied": the checkpoint carried an lm_head.weight equal to the embeddings, and it was dropped;
   * "separate": its own LM head was written as output.weight (Qwen3 4B/8B); "absent": none (or a classifier).
   */
  lmHead: "absent" | "tied" | "separate";
  vocabSize: number;
  /** Non-fatal notes (f16 fallbacks, ignored out-of-range tokens). */
  warnings: string[];
}

/**
 * node-llama-cpp 3.22.1 makes a native sampler for every evaluation call (controlledEvaluate,
 * evaluateWithoutGeneratingNewTokens), and the sampler's candidate buffer (one 12-byte
 * llama_token_data per vocabulary token: 3 MiB for Gemma's 256,000) is freed only by the C++
 * destructor, when V8 collects the sampler's JS wrapper. V8 does not know the buffer exists and a
 * server's JS heap stays small, so no full collection comes: measured on a Gemma-vocabulary model,
 * the process grew by 3 MiB per call (4 GiB after 1,600 calls), and minor (scavenge) collections did
 * not free them; a full collection every few calls kept it flat.
 *
 * So each backend counts the bytes its calls leave behind and runs a full collection when they pass
 * a limit: memory stays within the limit above the process's own, for about 20 ms of collection
 * per limit's worth of calls (hundreds of pairs' evaluation on a CPU).
 */
import v8 from "node:v8";
import vm from "node:vm";

/** Bytes of garbage allowed before a full collection (see the module comment). */
export const DEFAULT_SAMPLER_GARBAGE_LIMIT_BYTES = 256 * 1024 * 1024;

/** llama_token_data: id (int32), logit (float), p (float). */
const CANDIDATE_BYTES = 12;

export type Collector = () => void;

export class SamplerGarbage {
  private pendingBytes = 0;
  private collections = 0;

  constructor(
    /** The model's vocabulary size: each call leaves one candidate per token behind. */
    vocabularySize: number,
    private readonly limitBytes: number = DEFAULT_SAMPLER_GARBAGE_LIMIT_BYTES,
    private readonly collect: Collector | null = fullCollector(),
    private readonly bytesPerCall = Math.max(0, vocabularySize) * CANDIDATE_BYTES,
  ) {}

  /** Counts `calls` evaluation calls; collects when their garbage passes the limit. */
  noteCalls(calls = 1): void {
    if (!this.collect) return;
    this.pendingBytes += calls * this.bytesPerCall;
    if (this.pendingBytes < this.limitBytes) return;
    this.pendingBytes = 0;
    this.collections++;
    this.collect();
  }

  /** Full collections run so far (for tests and diagnostics). */
  get collectionsRun(): number {
    return this.collections;
  }
}

let cached: Collector | null | undefined;

/**
 * V8's full collection as a function: `global.gc` when node runs with --expose-gc, else the same
 * function exposed at run time (the flag makes every new context get a `gc` global). null if this
 * V8 refuses, in which case memory grows as described above.
 */
export function fullCollector(): Collector | null {
  if (cached !== undefined) return cached;
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === "function") return (cached = () => (existing as () => void)());
  try {
    v8.setFlagsFromString("--expose-gc");
    const gc: unknown = vm.runInNewContext("gc");
    cached = typeof gc === "function" ? () => (gc as () => void)() : null;
  } catch {
    cached = null;
  }
  return cached;
}

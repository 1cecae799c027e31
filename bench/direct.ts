/**
 * Measurements in the bench's own process, through node-llama-cpp without rerankd's server:
 * llama.cpp's ceiling (one long sequence), the naive loop (each pair alone, one after another), and
 * rerankd's engine alone (scheduler + backend, no HTTP) for the overhead comparison.
 */
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Llama, type LlamaModel, type Token } from "node-llama-cpp";
import { Scheduler, type SchedulerCounters } from "../src/engine/scheduler.js";
import { familyForArchitecture } from "../src/families/index.js";
import type { PairTokens, ScoringFamily } from "../src/families/types.js";
import { loadLlamaBackend } from "../src/models/llama-backend.js";

export interface LoadedModel {
  llama: Llama;
  model: LlamaModel;
  family: ScoringFamily;
  dispose(): Promise<void>;
}

export async function loadModel(path: string, threads: number): Promise<LoadedModel> {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads });
  const model = await llama.loadModel({ modelPath: path });
  const family = familyForArchitecture("gemma").bind({
    tokenize: (text) => model.tokenize(text, false) as number[],
    detokenize: (ids) => model.detokenize(ids as Token[], false),
    bosToken: model.tokens.bos,
    eosToken: model.tokens.eos,
    vocabularySize: 0,
  });
  return {
    llama,
    model,
    family,
    async dispose() {
      await model.dispose();
      await llama.dispose();
    },
  };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function lastLogitInput(tokens: readonly number[], readoutToken: number): ControlledEvaluateInputItem[] {
  const last = tokens.length - 1;
  return tokens.map((t, i): ControlledEvaluateInputItem =>
    i === last ? [t as Token, { generateNext: { logits: { filter: { tokens: [readoutToken as Token] } } } }] : (t as Token),
  );
}

/** `n` tokens for llama.cpp alone: ordinary pieces of the vocabulary (past the byte tokens), not one token repeated. */
export function ceilingTokens(n: number): Token[] {
  return Array.from({ length: n }, (_, i) => (300 + ((i * 7919) % 400)) as Token);
}

export interface CeilingResult {
  batchTokens: number;
  threads: number;
  /** Cores other processes used meanwhile (set by the caller). */
  foreignCores?: number;
  tokens: number;
  seconds: number[];
  tokensPerSecond: number;
}

/** llama.cpp evaluating one long sequence in batches of `batchTokens`: tokens/s, median of repeats. */
export async function measureCeiling(loaded: LoadedModel, options: { tokens: number; batchTokens: number; repeats: number; threads: number }): Promise<CeilingResult> {
  const context = await loaded.model.createContext({ contextSize: options.tokens + 8, sequences: 1, batchSize: options.batchTokens, threads: options.threads });
  try {
    const sequence = context.getSequence();
    const tokens = ceilingTokens(options.tokens);
    const readoutToken = loaded.family.readout.kind === "last-token-logits" ? loaded.family.readout.tokenIds[0] : 0;
    // Warm-up: pages the weights in and builds the graph once.
    await sequence.controlledEvaluate(lastLogitInput(tokens.slice(0, Math.min(64, options.tokens)), readoutToken));
    await sequence.clearHistory();
    const seconds: number[] = [];
    for (let r = 0; r < options.repeats; r++) {
      const started = performance.now();
      await sequence.controlledEvaluate(lastLogitInput(tokens, readoutToken));
      seconds.push((performance.now() - started) / 1000);
      await sequence.clearHistory();
    }
    return { batchTokens: options.batchTokens, threads: options.threads, tokens: options.tokens, seconds, tokensPerSecond: options.tokens / median(seconds) };
  } finally {
    await context.dispose();
  }
}

export interface NaiveResult {
  /** Cores other processes used meanwhile (set by the caller). */
  foreignCores?: number;
  pairs: number;
  tokens: number;
  seconds: number;
  pairsPerSecond: number;
  tokensPerSecond: number;
  /** Each pair's raw score, evaluated from scratch: the reference for rerankd's reused prefixes. */
  scores: number[];
}

/** What a straightforward program does: each pair evaluated alone on one sequence, one after another. */
export async function measureNaive(loaded: LoadedModel, pairs: readonly PairTokens[], options: { threads: number; batchTokens: number }): Promise<NaiveResult> {
  const longest = Math.max(...pairs.map((p) => p.tokens.length));
  const context = await loaded.model.createContext({ contextSize: longest + 8, sequences: 1, batchSize: options.batchTokens, threads: options.threads });
  try {
    const sequence = context.getSequence();
    const readoutToken = loaded.family.readout.kind === "last-token-logits" ? loaded.family.readout.tokenIds[0] : 0;
    await sequence.controlledEvaluate(lastLogitInput(pairs[0].tokens.slice(0, 16), readoutToken));
    await sequence.clearHistory();
    const started = performance.now();
    let tokens = 0;
    const scores: number[] = [];
    for (const pair of pairs) {
      const output = await sequence.controlledEvaluate(lastLogitInput(pair.tokens, readoutToken));
      scores.push(output[pair.tokens.length - 1]?.next.logits?.get(readoutToken as Token) ?? NaN);
      await sequence.clearHistory();
      tokens += pair.tokens.length;
    }
    const seconds = (performance.now() - started) / 1000;
    return { pairs: pairs.length, tokens, seconds, pairsPerSecond: pairs.length / seconds, tokensPerSecond: tokens / seconds, scores };
  } finally {
    await context.dispose();
  }
}

export interface EngineOnlyResult {
  seconds: number[];
  counters: SchedulerCounters;
}

/**
 * rerankd's scheduler and backend without HTTP: the same pairs, lanes, budget and threads as the
 * server. Each job is one request, timed alone; `warmup` runs first, untimed.
 */
export async function measureEngineOnly(
  path: string,
  warmup: readonly PairTokens[],
  jobs: ReadonlyArray<readonly PairTokens[]>,
  options: { threads: number; lanes: number; batchTokens: number; maxLength: number },
): Promise<EngineOnlyResult> {
  const backend = await loadLlamaBackend({
    modelPath: path,
    device: "cpu",
    threads: options.threads,
    lanes: options.lanes,
    batchTokens: options.batchTokens,
    laneCapacity: ({ tokenizer }) => familyForArchitecture("gemma").bind(tokenizer).maxPairTokens(options.maxLength),
  });
  try {
    const family = familyForArchitecture("gemma").bind(backend.tokenizer);
    const scheduler = new Scheduler(backend);
    await scheduler.submit({ pairs: warmup, readout: family.readout });
    const seconds: number[] = [];
    const before = scheduler.counters();
    for (const pairs of jobs) {
      const started = performance.now();
      await scheduler.submit({ pairs, readout: family.readout });
      seconds.push((performance.now() - started) / 1000);
    }
    const after = scheduler.counters();
    const counters = Object.fromEntries(
      Object.entries(after).map(([k, v]) => [k, v - before[k as keyof SchedulerCounters]]),
    ) as unknown as SchedulerCounters;
    return { seconds, counters };
  } finally {
    await backend.dispose();
  }
}

export { median };

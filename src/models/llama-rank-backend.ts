/**
 * The llama.cpp backend for models scored by their own classification head (llama.cpp's RANK
 * pooling): XLM-RoBERTa cross-encoders (`bert` GGUFs with `cls`/`cls.output` on the first token)
 * and llama.cpp's Qwen3-Reranker conversions (`cls.output` on the last token, softmaxed).
 *
 * Through node-llama-cpp 3.22.1 a context in ranking mode can hand back the pooled output of
 * sequence 0 only (its addon's getEmbedding reads llama_get_embeddings_seq(ctx, 0)), so one
 * context scores one pair per llama_decode: evaluating several sequences in one call would
 * compute their scores and then lose all but one. Parallelism therefore comes from several
 * contexts of the one loaded model ("workers"), each decoding its own pair on its own threads;
 * lanes are served by whichever worker is free. The token sequence is the family's, evaluated
 * whole (an encoder's states depend on every token, so no prefix is kept).
 */
import { statSync } from "node:fs";
import {
  getLlama,
  LlamaLogLevel,
  type LlamaContext,
  type LlamaContextOptions,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import type { BackendInfo, EvaluationLane, ModelBackend, Tokenizer } from "../engine/backend.js";
import type { Readout } from "../families/types.js";
import { llamaTokenizer, type Device } from "./llama-backend.js";
import { SamplerGarbage } from "./sampler-garbage.js";

export interface LlamaRankBackendOptions {
  modelPath: string;
  device: Device;
  /** CPU threads in all, shared out among the workers. */
  threads: number;
  /** Lanes the scheduler may fill (rounded down to a multiple of the workers); pairs wait for a free worker. */
  lanes: number;
  /**
   * llama.cpp contexts decoding side by side, the threads shared out among them (default: one per
   * thread, at most one per lane). Independent single-thread decodes need no barrier between the
   * threads of each graph step, which on a busy or small machine is where multi-thread decodes of
   * one short pair lose most.
   */
  workers?: number;
  /** The longest pair (tokens) the family can build, from the model's tokenizer. */
  laneCapacity: (model: { tokenizer: Tokenizer; architecture: string }) => number;
  /** Requested tokens per decode; raised to the lane capacity, since an encoder's pair must fit one batch. */
  batchTokens: number;
  log?: (level: "warn" | "error", message: string) => void;
  /** Native sampler garbage allowed before a full collection (default: sampler-garbage.ts's). */
  samplerGarbageLimitBytes?: number;
}

/**
 * node-llama-cpp internals this module relies on (3.22.1), typed here because they are not part
 * of its public types: the `_embeddings`/`_ranking` context options its LlamaRankingContext
 * passes, and the addon context's getEmbedding, which returns the RANK-pooled values of sequence 0.
 */
interface RankingContextOptions {
  _embeddings: true;
  _ranking: true;
}
interface RankingContextInternals {
  _ctx?: { getEmbedding?: (inputTokensLength: number, maxVectorSize?: number) => Float64Array };
}

export async function loadLlamaRankBackend(options: LlamaRankBackendOptions): Promise<ModelBackend> {
  const fileSizeBytes = statSync(options.modelPath).size;
  const llama = await getLlama({
    gpu: options.device === "cpu" ? false : "auto",
    build: "never",
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
      const text = message.trim();
      if (!text) return;
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) options.log?.("error", text);
      else if (level === LlamaLogLevel.warn) options.log?.("warn", text);
    },
    maxThreads: options.threads,
  });
  const model = await llama.loadModel({ modelPath: options.modelPath });
  const workers: RankWorker[] = [];
  try {
    const tokenizer = llamaTokenizer(model);
    const architecture = String(model.fileInfo.metadata.general.architecture);
    const capacity = options.laneCapacity({ tokenizer, architecture });
    const trained = trainedPositions(model, architecture);
    if (trained !== null && capacity > trained) {
      throw new Error(`pairs of up to ${capacity} tokens do not fit this model's ${trained} positions; lower --max-length`);
    }
    const workerCount = Math.max(1, Math.min(options.workers ?? options.threads, options.lanes));
    const threadsPerWorker = Math.max(1, Math.floor(options.threads / workerCount));
    const batchSize = Math.max(options.batchTokens, capacity);
    const garbage = new SamplerGarbage(tokenizer.vocabularySize, options.samplerGarbageLimitBytes);
    for (let i = 0; i < workerCount; i++) {
      const contextOptions: LlamaContextOptions & RankingContextOptions = {
        // One cell more than the longest pair: given exactly as many cells as tokens, node-llama-cpp
        // shifts the context to keep one free, dropping the pair's first tokens (measured: a
        // 512-token pair in a 512-cell context scores wrong). llama.cpp pads the size to 256s.
        contextSize: capacity + 1,
        batchSize,
        sequences: 1,
        threads: threadsPerWorker,
        // Flash attention: never materialises the tokens x tokens x heads score matrix (4 GiB per
        // context for an 8192-token XLM-R pair), and measured a little faster on CPU; llama-server's
        // default ("auto") turns it on too.
        flashAttention: true,
        _embeddings: true,
        _ranking: true,
      };
      const context = await model.createContext(contextOptions);
      workers.push(new RankWorker(context, garbage));
    }
    const pool = new WorkerPool(workers);
    // Whole multiples of the workers: the scheduler starts one pair per lane and waits for all of
    // them (whole-pair steps), so a fifth pair on two workers leaves one idle while the other ends
    // its third (measured: XLM-R W1 at 0.87x of llama-server with 5 lanes, 1.05x with 4).
    const laneCount = Math.max(workerCount, options.lanes - (options.lanes % workerCount));
    const lanes = Array.from({ length: laneCount }, (_, id) => new RankLane(id, pool));
    const info: BackendInfo = {
      architecture,
      name: model.fileInfo.metadata.general.name ?? null,
      device: llama.gpu === false ? "cpu" : llama.gpu,
      threads: threadsPerWorker * workerCount,
      lanes: laneCount,
      laneCapacity: capacity,
      batchTokens: batchSize,
      fileSizeBytes,
    };
    return {
      info,
      tokenizer,
      lanes,
      async dispose() {
        for (const worker of workers) await worker.context.dispose();
        await model.dispose();
        await llama.dispose();
      },
    };
  } catch (error) {
    for (const worker of workers) await worker.context.dispose().catch(() => undefined);
    await model.dispose();
    throw error;
  }
}

/** The positions a model was trained with (`<arch>.context_length`; XLM-R's already excludes the 2 padding offsets). */
function trainedPositions(model: LlamaModel, architecture: string): number | null {
  const metadata = model.fileInfo.metadata as unknown as Record<string, { context_length?: unknown } | undefined>;
  const n = metadata[architecture]?.context_length;
  return typeof n === "number" && n > 0 ? n : null;
}

/** One ranking context with its single sequence: one pair per llama_decode. */
class RankWorker {
  private sequence: LlamaContextSequence;
  private readonly getEmbedding: (inputTokensLength: number, maxVectorSize?: number) => Float64Array;

  constructor(
    readonly context: LlamaContext,
    private readonly garbage: SamplerGarbage,
  ) {
    this.sequence = context.getSequence();
    const addon = (context as unknown as RankingContextInternals)._ctx;
    const getEmbedding = addon?.getEmbedding;
    if (!addon || typeof getEmbedding !== "function") {
      throw new Error("this node-llama-cpp version does not expose the ranking output rerankd reads (expected 3.22.1)");
    }
    this.getEmbedding = getEmbedding.bind(addon);
  }

  async score(tokens: readonly number[], outputs: number): Promise<number[]> {
    if (this.sequence.nextTokenIndex > 0) await this.sequence.clearHistory();
    // Every evaluation leaves a native sampler behind until a full collection.
    this.garbage.noteCalls();
    await this.sequence.evaluateWithoutGeneratingNewTokens(tokens as Token[]);
    // Read before anything else decodes on this context: the pooled output is the last decode's.
    const values = Array.from(this.getEmbedding(tokens.length, outputs));
    if (values.length < outputs) throw new Error(`the model's classifier gave ${values.length} values, the family reads ${outputs}`);
    if (!values.every(Number.isFinite)) throw new Error("llama.cpp returned a non-finite classifier output");
    return values;
  }

  async reset(): Promise<void> {
    try {
      await this.sequence.clearHistory();
    } catch {
      await this.sequence.dispose();
      this.sequence = this.context.getSequence();
    }
  }
}

/** Hands pairs to free workers in arrival order. */
class WorkerPool {
  private readonly idle: RankWorker[];
  private readonly waiting: Array<(worker: RankWorker) => void> = [];

  constructor(workers: RankWorker[]) {
    this.idle = [...workers];
  }

  async run<T>(task: (worker: RankWorker) => Promise<T>): Promise<T> {
    const worker = this.idle.pop() ?? (await new Promise<RankWorker>((resolve) => this.waiting.push(resolve)));
    try {
      return await task(worker);
    } catch (error) {
      await worker.reset().catch(() => undefined);
      throw error;
    } finally {
      const next = this.waiting.shift();
      if (next) next(worker);
      else this.idle.push(worker);
    }
  }
}

class RankLane implements EvaluationLane {
  constructor(
    readonly id: number,
    private readonly pool: WorkerPool,
  ) {}

  /** Nothing is held between pairs: an encoder's states are not reusable. */
  heldTokens(): readonly number[] {
    return [];
  }

  async evaluate(tokens: readonly number[], readout: Readout): Promise<{ values: number[]; evaluatedTokens: number }> {
    if (tokens.length === 0) throw new Error("cannot evaluate an empty token sequence");
    if (readout.kind !== "classifier") throw new Error(`the rank backend reads a classifier head, not ${readout.kind}`);
    const values = await this.pool.run((worker) => worker.score(tokens, readout.outputs));
    return { values, evaluatedTokens: tokens.length };
  }

  async reset(): Promise<void> {}
}

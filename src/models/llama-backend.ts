/**
 * The llama.cpp backend (through node-llama-cpp): one model, one context, one lane per llama.cpp
 * sequence. The scheduler drives it in explicit steps (`stepper`): between steps it truncates lanes
 * to the prefix they keep or copies a prefix's KV state from another lane; a step appends each
 * lane's chunk of tokens, all started in the same tick, so node-llama-cpp decodes them in one batch.
 *
 * Steps never overlap: node-llama-cpp's erase and copy take the context lock that a running batch
 * holds, so preparing lanes while a batch runs would only queue behind it.
 */
import { statSync } from "node:fs";
import {
  getLlama,
  LlamaLogLevel,
  type ControlledEvaluateInputItem,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import type { BackendInfo, EvaluationLane, ModelBackend, StepEvaluator, StepItem, StepOutcome, Tokenizer } from "../engine/backend.js";
import type { Readout } from "../families/types.js";
import { SamplerGarbage } from "./sampler-garbage.js";

export type Device = "cpu" | "auto";

export interface LlamaBackendOptions {
  modelPath: string;
  device: Device;
  threads: number;
  /** llama.cpp sequences: how many pairs are evaluated side by side. */
  lanes: number;
  /**
   * Tokens each lane must hold: the longest pair the family can build. A function because the
   * family needs the model's tokenizer (loaded here) to know it.
   */
  laneCapacity: (model: { tokenizer: Tokenizer; architecture: string }) => number;
  /** Tokens per decode step across all lanes (llama.cpp n_batch). */
  batchTokens: number;
  /** Receives llama.cpp's warnings and errors. */
  log?: (level: "warn" | "error", message: string) => void;
  /** Native sampler garbage allowed before a full collection (default: sampler-garbage.ts's). */
  samplerGarbageLimitBytes?: number;
}

export async function loadLlamaBackend(options: LlamaBackendOptions): Promise<ModelBackend> {
  const fileSizeBytes = statSync(options.modelPath).size;
  const llama = await getLlama({
    gpu: options.device === "cpu" ? false : "auto",
    // A server must not start compiling llama.cpp at start-up: the prebuilt binaries or an error.
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
  try {
    const tokenizer = llamaTokenizer(model);
    const architecture = String(model.fileInfo.metadata.general.architecture);
    const capacity = options.laneCapacity({ tokenizer, architecture });
    const context = await model.createContext({
      // node-llama-cpp keeps one cell of each sequence spare (it shifts the context instead of
      // filling it), so one more than the longest pair.
      contextSize: capacity + 1,
      sequences: options.lanes,
      batchSize: options.batchTokens,
      threads: options.threads,
    });
    const garbage = new SamplerGarbage(tokenizer.vocabularySize, options.samplerGarbageLimitBytes);
    const lanes = Array.from({ length: options.lanes }, (_, id) => new LlamaLane(id, context, garbage));
    const stepper = llamaStepper(lanes);
    const info: BackendInfo = {
      architecture,
      name: model.fileInfo.metadata.general.name ?? null,
      device: llama.gpu === false ? "cpu" : llama.gpu,
      threads: options.threads,
      lanes: options.lanes,
      laneCapacity: capacity,
      batchTokens: context.batchSize,
      fileSizeBytes,
    };
    return {
      info,
      tokenizer,
      lanes,
      stepper,
      async dispose() {
        await context.dispose();
        await model.dispose();
        await llama.dispose();
      },
    };
  } catch (error) {
    await model.dispose();
    throw error;
  }
}

/** The Tokenizer interface over a loaded llama.cpp model (shared by every llama.cpp backend). */
export function llamaTokenizer(model: LlamaModel): Tokenizer {
  const tokens = (model.fileInfo.metadata.tokenizer as { ggml?: { tokens?: readonly string[] } } | undefined)?.ggml?.tokens;
  return {
    tokenize: (text) => model.tokenize(text, false) as number[],
    tokenizeTemplate: (text) => model.tokenize(text, true) as number[],
    detokenize: (ids) => model.detokenize(ids as Token[], false),
    bosToken: model.tokens.bos,
    eosToken: model.tokens.eos,
    vocabularySize: tokens?.length ?? 0,
  };
}

/**
 * node-llama-cpp 3.22.1's KV copy between sequences (llama_memory_seq_cp), internal there: its
 * LlamaContextSequence._copyStateFromOtherSequence(source, upToTokenIndex) copies the source's whole
 * state under the context lock and erases what follows upToTokenIndex; true when the copy matched.
 * Feature-detected at load: without it, lanes evaluate shared prefixes themselves.
 */
interface SequenceCopyInternals {
  _copyStateFromOtherSequence?: (source: LlamaContextSequence, upToTokenIndex: number) => Promise<boolean | undefined>;
}

class LlamaLane implements EvaluationLane {
  private sequence: LlamaContextSequence;
  /** contextTokens copies on every read; the scheduler reads often, so keep one until the state changes. */
  private held: readonly number[] | null = null;

  constructor(
    readonly id: number,
    private readonly context: LlamaContext,
    private readonly garbage: SamplerGarbage,
  ) {
    this.sequence = context.getSequence();
  }

  heldTokens(): readonly number[] {
    this.held ??= this.sequence.contextTokens;
    return this.held;
  }

  /** Tokens the lane can hold: node-llama-cpp keeps one cell of a sequence spare. */
  get capacity(): number {
    return this.context.contextSize - 1;
  }

  /** The whole-pair path (wrappers and backends without steps): keep the longest held prefix, evaluate the rest. */
  async evaluate(tokens: readonly number[], readout: Readout): Promise<{ values: number[]; evaluatedTokens: number }> {
    if (tokens.length === 0) throw new Error("cannot evaluate an empty token sequence");
    // Keep the longest held prefix, but always evaluate the last token: its logits are the score.
    const keep = Math.min(commonPrefixLength(this.heldTokens(), tokens), tokens.length - 1);
    if (keep < this.heldTokens().length) await this.truncate(keep);
    const values = await this.append(tokens, keep, tokens.length, readout);
    return { values: values as number[], evaluatedTokens: tokens.length - keep };
  }

  /**
   * Evaluates tokens[from, to) after the tokens[0, from) the lane must hold, reading `readout` at
   * the last one when given. The checks make a state mix-up an error, never a wrong score.
   */
  append(tokens: readonly number[], from: number, to: number, readout: Readout | null): Promise<number[] | null> {
    if (to <= from) throw new Error("an evaluation step needs at least one token");
    if (to > this.capacity) throw new Error(`a pair of ${tokens.length} tokens does not fit a lane of ${this.capacity}`);
    const held = this.heldTokens();
    if (held.length !== from || commonPrefixLength(held, tokens) !== from) {
      throw new Error(`lane ${this.id} holds ${held.length} tokens that are not the pair's first ${from}`);
    }
    if (readout && readout.kind !== "last-token-logits") {
      // Classifier heads (RANK pooling) run on the rank backend (llama-rank-backend.ts), not here.
      throw new Error(`this backend reads last-token logits, not a ${readout.kind} readout`);
    }
    const chunk = tokens.slice(from, to) as Token[];
    const last = chunk.length - 1;
    const filter = readout ? { tokens: readout.tokenIds as Token[] } : null;
    const input = chunk.map(
      (token, i): ControlledEvaluateInputItem => (filter && i === last ? [token, { generateNext: { logits: { filter } } }] : token),
    );
    this.held = null;
    // Every controlledEvaluate leaves a native sampler behind until a full collection.
    this.garbage.noteCalls();
    return this.sequence.controlledEvaluate(input).then((output) => {
      this.held = null;
      if (!readout) return null;
      const logits = output[last]?.next.logits;
      if (!logits) throw new Error("llama.cpp returned no logits for the last token");
      return readout.tokenIds.map((id) => {
        const value = logits.get(id as Token);
        if (value === undefined || !Number.isFinite(value)) throw new Error(`llama.cpp returned no finite logit for token ${id}`);
        return value;
      });
    });
  }

  async truncate(keep: number): Promise<void> {
    this.held = null;
    try {
      await this.sequence.eraseContextTokenRanges([{ start: keep, end: this.sequence.nextTokenIndex }]);
    } finally {
      this.held = null;
    }
  }

  /** Copies `source`'s KV state for its first `keep` tokens; false (and this lane emptied) when that failed. */
  async copyFrom(source: LlamaLane, keep: number): Promise<boolean> {
    const copy = (this.sequence as unknown as SequenceCopyInternals)._copyStateFromOtherSequence;
    if (typeof copy !== "function") return false;
    this.held = null;
    const copied = await copy.call(this.sequence, source.sequence, keep).then(
      (result) => result === true,
      () => false,
    );
    this.held = null;
    if (!copied || this.sequence.nextTokenIndex !== keep) {
      await this.reset();
      return false;
    }
    return true;
  }

  /**
   * Forgets everything, KV cells included: the sequence is disposed (llama.cpp removes all of its
   * cells, even ones a failed decode wrote without node-llama-cpp knowing) and a fresh one taken.
   */
  async reset(): Promise<void> {
    this.held = null;
    try {
      await this.sequence.dispose();
    } finally {
      this.sequence = this.context.getSequence();
      this.held = null;
    }
  }
}

/** Whether this node-llama-cpp exposes the KV copy between sequences. */
function canCopySequences(lane: LlamaLane): boolean {
  const probe = (lane as unknown as { sequence: SequenceCopyInternals }).sequence;
  return typeof probe._copyStateFromOtherSequence === "function";
}

/** The explicit-step engine over the lanes of one context. */
function llamaStepper(lanes: readonly LlamaLane[]): StepEvaluator {
  const own = (lane: EvaluationLane): LlamaLane => {
    const found = lanes[lane.id];
    if (found !== lane) throw new Error(`lane ${lane.id} is not a lane of this backend`);
    return found;
  };
  const stepper: StepEvaluator = {
    async step(items: readonly StepItem[]): Promise<StepOutcome[]> {
      // Every append is started in this same tick: node-llama-cpp queues their decodes and
      // dispatches them together on the next event-loop turn, as one llama_decode when they fit
      // the batch size (the scheduler keeps a step within it).
      const running = items.map((item) => {
        try {
          return own(item.lane).append(item.tokens, item.from, item.to, item.readout);
        } catch (error) {
          return Promise.reject(error);
        }
      });
      const settled = await Promise.allSettled(running);
      return settled.map((s): StepOutcome => (s.status === "fulfilled" ? { ok: true, values: s.value } : { ok: false, error: s.reason as unknown }));
    },
    truncate: (lane, keep) => own(lane).truncate(keep),
    reset: (lane) => own(lane).reset(),
  };
  if (lanes.length > 1 && lanes.every(canCopySequences)) {
    stepper.copy = (target, source, keep) => own(target).copyFrom(own(source), keep);
  }
  return stepper;
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

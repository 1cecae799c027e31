/**
 * The llama.cpp backend (through node-llama-cpp): one model, one context, one lane per llama.cpp
 * sequence. Evaluations started on several lanes in the same tick are decoded in one batch by
 * node-llama-cpp's batching (dispatch on the next event-loop cycle).
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
import type { BackendInfo, EvaluationLane, ModelBackend, Tokenizer } from "../engine/backend.js";
import type { Readout } from "../families/types.js";

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
    const context = await model.createContext({
      contextSize: options.laneCapacity({ tokenizer, architecture }),
      sequences: options.lanes,
      batchSize: options.batchTokens,
      threads: options.threads,
    });
    const lanes = Array.from({ length: options.lanes }, (_, id) => new LlamaLane(id, context));
    const info: BackendInfo = {
      architecture,
      name: model.fileInfo.metadata.general.name ?? null,
      device: llama.gpu === false ? "cpu" : llama.gpu,
      threads: options.threads,
      lanes: options.lanes,
      laneCapacity: context.contextSize,
      batchTokens: context.batchSize,
      fileSizeBytes,
    };
    return {
      info,
      tokenizer,
      lanes,
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

function llamaTokenizer(model: LlamaModel): Tokenizer {
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

class LlamaLane implements EvaluationLane {
  private sequence: LlamaContextSequence;

  constructor(
    readonly id: number,
    private readonly context: LlamaContext,
  ) {
    this.sequence = context.getSequence();
  }

  heldTokens(): readonly number[] {
    return this.sequence.contextTokens;
  }

  async evaluate(tokens: readonly number[], readout: Readout): Promise<{ values: number[]; evaluatedTokens: number }> {
    if (tokens.length === 0) throw new Error("cannot evaluate an empty token sequence");
    // Classifier heads (RANK pooling) run on the rank backend (llama-rank-backend.ts), not here.
    if (readout.kind !== "last-token-logits") throw new Error(`this backend reads last-token logits, not a ${readout.kind} readout`);
    const held = this.sequence.contextTokens;
    // Keep the longest held prefix, but always evaluate the last token: its logits are the score.
    const keep = Math.min(commonPrefixLength(held, tokens), tokens.length - 1);
    if (keep < held.length) {
      await this.sequence.eraseContextTokenRanges([{ start: keep, end: this.sequence.nextTokenIndex }]);
    }
    const rest = tokens.slice(keep) as Token[];
    const last = rest.length - 1;
    const filter = { tokens: readout.tokenIds as Token[] };
    const input = rest.map(
      (token, i): ControlledEvaluateInputItem => (i === last ? [token, { generateNext: { logits: { filter } } }] : token),
    );
    const output = await this.sequence.controlledEvaluate(input);
    const logits = output[last]?.next.logits;
    if (!logits) throw new Error("llama.cpp returned no logits for the last token");
    const values = readout.tokenIds.map((id) => {
      const value = logits.get(id as Token);
      if (value === undefined) throw new Error(`llama.cpp returned no logit for token ${id}`);
      return value;
    });
    return { values, evaluatedTokens: rest.length };
  }

  async reset(): Promise<void> {
    try {
      await this.sequence.clearHistory();
    } catch {
      // A sequence that cannot even clear is replaced by a fresh one.
      await this.sequence.dispose();
      this.sequence = this.context.getSequence();
    }
  }
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

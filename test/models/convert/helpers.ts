// Shared setup for the converter tests: a trained tokenizer, tiny HF Gemma
// checkpoints, the float64 reference, and raw logits from node-llama-cpp.

import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Llama, type Token } from "node-llama-cpp";
import { join } from "node:path";
import { readGgufHeader, readGgufTensor } from "../../../src/models/gguf/reader.js";
import type { GgufTensorInfo } from "../../../src/models/gguf/types.js";
import {
  checkSpmLayout,
  ensureTokenizerModel,
  randomGemmaWeights,
  tinyGemmaConfig,
  writeHfGemmaCheckpoint,
  type CheckpointVariant,
  type HfWeights,
  type TinyGemmaConfig,
  type WriteCheckpointOptions,
} from "../../support/hf-checkpoint.js";
import { referenceForward, type GemmaConfig, type GemmaWeights } from "../../support/reference-gemma.js";

export const WEIGHT_SEED = 20240611;

export interface Fixture {
  tokenizerModel: string;
  config: TinyGemmaConfig;
  /** Weights as generated (f32). */
  weights: HfWeights;
}

export async function makeFixture(overrides: Partial<TinyGemmaConfig> = {}): Promise<Fixture> {
  const { model, vocab } = await ensureTokenizerModel();
  const config = tinyGemmaConfig(checkSpmLayout(vocab), overrides);
  return { tokenizerModel: model, config, weights: randomGemmaWeights(config, WEIGHT_SEED) };
}

export async function writeVariant(
  fx: Fixture,
  root: string,
  variant: CheckpointVariant,
  extra: Partial<WriteCheckpointOptions> = {},
): Promise<{ dir: string; stored: HfWeights }> {
  const dir = join(root, `ckpt-${variant}`);
  const stored = await writeHfGemmaCheckpoint(dir, { variant, config: fx.config, weights: fx.weights, tokenizerModel: fx.tokenizerModel, ...extra });
  return { dir, stored };
}

/** The reference's view of HF weights. */
export function referenceOf(config: TinyGemmaConfig, w: HfWeights): { config: GemmaConfig; weights: GemmaWeights } {
  const get = (name: string): Float32Array => {
    const t = w.get(name);
    if (!t) throw new Error(`missing ${name}`);
    return t.data;
  };
  return {
    config: {
      vocabSize: config.vocab_size,
      hiddenSize: config.hidden_size,
      numLayers: config.num_hidden_layers,
      numHeads: config.num_attention_heads,
      numKvHeads: config.num_key_value_heads,
      headDim: config.head_dim,
      intermediateSize: config.intermediate_size,
      rmsNormEps: config.rms_norm_eps,
      ropeTheta: config.rope_theta,
      contextLength: config.max_position_embeddings,
    },
    weights: {
      embedTokens: get("model.embed_tokens.weight"),
      finalNorm: get("model.norm.weight"),
      layers: Array.from({ length: config.num_hidden_layers }, (_, l) => {
        const p = `model.layers.${l}.`;
        return {
          inputLayernorm: get(`${p}input_layernorm.weight`),
          qProj: get(`${p}self_attn.q_proj.weight`),
          kProj: get(`${p}self_attn.k_proj.weight`),
          vProj: get(`${p}self_attn.v_proj.weight`),
          oProj: get(`${p}self_attn.o_proj.weight`),
          postAttentionLayernorm: get(`${p}post_attention_layernorm.weight`),
          gateProj: get(`${p}mlp.gate_proj.weight`),
          upProj: get(`${p}mlp.up_proj.weight`),
          downProj: get(`${p}mlp.down_proj.weight`),
        };
      }),
    },
  };
}

export function referenceLogits(config: TinyGemmaConfig, w: HfWeights, sequences: readonly number[][], tokenId: number): number[] {
  const ref = referenceOf(config, w);
  return sequences.map((seq) => referenceForward(ref.config, ref.weights, seq).logitFor(tokenId));
}

let llamaPromise: Promise<Llama> | undefined;
export function llama(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: "never", logLevel: process.env.RERANKD_TEST_LLAMA_LOG === "1" ? LlamaLogLevel.warn : LlamaLogLevel.error });
  return llamaPromise;
}

/**
 * llama.cpp settings: "exact" is the most precise CPU path (f32 KV cache, no
 * flash attention, which would cast K and V to f16); "default" is what a
 * context gets by default (f16 KV cache, flash attention "auto").
 */
export type LlamaPrecision = "exact" | "default";

/** Raw last-position logit of `tokenId` for each sequence, computed by llama.cpp. */
export async function llamaLogits(
  modelPath: string,
  sequences: readonly number[][],
  tokenId: number,
  precision: LlamaPrecision = "default",
): Promise<number[]> {
  const l = await llama();
  const model = await l.loadModel({ modelPath });
  try {
    const ctx = await model.createContext({
      contextSize: 512,
      sequences: 1,
      threads: 2,
      ...(precision === "exact" ? { experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32", flashAttention: false } : {}),
    });
    try {
      const out: number[] = [];
      const seq = ctx.getSequence();
      const target = tokenId as Token;
      for (const tokens of sequences) {
        await seq.clearHistory();
        const input: ControlledEvaluateInputItem[] = tokens.map((t, i) =>
          i === tokens.length - 1 ? [t as Token, { generateNext: { logits: { filter: { tokens: [target] } } } }] : (t as Token),
        );
        const res = await seq.controlledEvaluate(input);
        const logit = res[tokens.length - 1]?.next?.logits?.get(target);
        if (logit === undefined) throw new Error("no logit returned");
        out.push(logit);
      }
      return out;
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

export async function tokenizeWithLlama(modelPath: string, texts: readonly string[]): Promise<{ ids: number[][]; bos: number | null; eos: number | null }> {
  const l = await llama();
  const model = await l.loadModel({ modelPath, vocabOnly: true });
  try {
    return { ids: texts.map((t) => Array.from(model.tokenize(t, false))), bos: model.tokens.bos, eos: model.tokens.eos };
  } finally {
    await model.dispose();
  }
}

/** All tensors of a GGUF file, decoded to float32, by name. */
export async function ggufTensors(path: string): Promise<Map<string, { info: GgufTensorInfo; values: Float32Array }>> {
  const header = await readGgufHeader(path);
  const out = new Map<string, { info: GgufTensorInfo; values: Float32Array }>();
  for (const info of header.tensors) out.set(info.name, { info, values: await readGgufTensor(path, info) });
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Ranking (indices sorted by descending score). */
export function ranking(scores: readonly number[]): number[] {
  return scores.map((s, i) => [s, i] as const).sort((x, y) => y[0] - x[0]).map(([, i]) => i);
}

// A tiny random-weight Gemma (architecture "gemma", as llama.cpp loads it) with the
// corpus-trained SPM vocabulary, written as GGUF and cached under <repo>/.cache/fixtures/.
//
// Weights are kept in Hugging Face convention (Linear [out, in], GemmaRMSNorm weights as
// offsets from 1) and converted the way convert_hf_to_gguf.py's Gemma path does:
//   - norms are stored as 1 + w, because llama.cpp's RMS norm multiplies by the stored weight;
//   - Q/K are written unpermuted: llama.cpp runs Gemma with NEOX (rotate-half) RoPE, like HF;
//   - a Linear [out, in] becomes GGUF ne [in, out] with the same bytes;
//   - there is no output.weight: llama.cpp ties the LM head to token_embd.weight.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { decodeF16, decodeQ8_0, encodeF16, encodeQ8_0 } from "../../src/models/gguf/quantize.js";
import { GgmlType, f32, str, u32 } from "../../src/models/gguf/types.js";
import type { GgufMetadata } from "../../src/models/gguf/types.js";
import { writeGguf } from "../../src/models/gguf/writer.js";
import type { GgufTensorSource } from "../../src/models/gguf/writer.js";
import type { GemmaConfig, GemmaWeights } from "./reference-gemma.js";
import { seededGemmaWeights } from "./random-gemma.js";
import { buildSpmVocab, loadCorpus, spmTokenizerMetadata } from "./spm-vocab.js";
import type { SpmVocab } from "./spm-vocab.js";

/** Bump when the builder's output changes for the same options, so cached files are rebuilt. */
const BUILDER_VERSION = 1;

export type TinyGemmaDtype = "f32" | "f16" | "q8_0";

export interface TinyGemmaOptions {
  /** Storage type of the 2D weights (norms always stay f32). Default "f32". */
  dtype?: TinyGemmaDtype;
  seed?: number;
  numLayers?: number;
  hiddenSize?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  intermediateSize?: number;
}

export interface TinyGemma {
  path: string;
  dtype: TinyGemmaDtype;
  config: GemmaConfig;
  /** Source weights in Hugging Face convention, before any f16/q8_0 rounding. */
  weights: GemmaWeights;
  vocab: SpmVocab;
}

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURE_DIR = `${REPO_ROOT}.cache/fixtures`;

export async function buildTinyGemma(options: TinyGemmaOptions = {}): Promise<TinyGemma> {
  const dtype = options.dtype ?? "f32";
  const seed = options.seed ?? 20240229;
  const corpus = loadCorpus();
  const vocab = buildSpmVocab(corpus);
  const config: GemmaConfig = {
    vocabSize: vocab.tokens.length,
    hiddenSize: options.hiddenSize ?? 64,
    numLayers: options.numLayers ?? 2,
    numHeads: options.numHeads ?? 4,
    numKvHeads: options.numKvHeads ?? 1,
    headDim: options.headDim ?? 16,
    intermediateSize: options.intermediateSize ?? 128,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    contextLength: 2048,
  };
  const weights = randomWeights(config, seed);

  const key = createHash("sha256")
    .update(JSON.stringify({ BUILDER_VERSION, dtype, seed, config }))
    .update(corpus)
    .digest("hex")
    .slice(0, 16);
  const path = `${FIXTURE_DIR}/tiny-gemma-${dtype}-${key}.gguf`;
  if (!existsSync(path)) {
    mkdirSync(FIXTURE_DIR, { recursive: true });
    await writeGguf(path, { metadata: ggufMetadata(config, vocab, dtype), tensors: ggufTensors(config, weights, dtype) });
  }
  return { path, dtype, config, weights, vocab };
}

/**
 * The weights llama.cpp actually computes with: 2D weights rounded through the storage
 * type, norms untouched. Feed these to referenceForward when checking f16/q8_0 fixtures.
 */
export function storedWeights(weights: GemmaWeights, dtype: TinyGemmaDtype): GemmaWeights {
  const round = (values: Float32Array): Float32Array => {
    if (dtype === "f16") return decodeF16(encodeF16(values));
    if (dtype === "q8_0") return decodeQ8_0(encodeQ8_0(values));
    return values;
  };
  return {
    embedTokens: round(weights.embedTokens),
    finalNorm: weights.finalNorm,
    layers: weights.layers.map((layer) => ({
      ...layer,
      qProj: round(layer.qProj),
      kProj: round(layer.kProj),
      vProj: round(layer.vProj),
      oProj: round(layer.oProj),
      gateProj: round(layer.gateProj),
      upProj: round(layer.upProj),
      downProj: round(layer.downProj),
    })),
  };
}

/**
 * Seeded weights, scaled so every part of the network matters: embeddings of std 0.25
 * (so the tied "Yes" logit lands around ±0.5..10), projections ~1/sqrt(fan_in) with the
 * residual-writing ones (o_proj, down_proj) boosted so context visibly moves the last
 * hidden state, and norm offsets of std 0.2 so storing w instead of 1 + w could not pass.
 */
function randomWeights(config: GemmaConfig, seed: number): GemmaWeights {
  return seededGemmaWeights(config, seed, { embedding: 0.25, normOffset: 0.2, residualGain: 1.5 });
}

const FILE_TYPE: Record<TinyGemmaDtype, number> = { f32: 0, f16: 1, q8_0: 7 }; // llama_ftype ALL_F32, MOSTLY_F16, MOSTLY_Q8_0
const TENSOR_TYPE: Record<TinyGemmaDtype, GgmlType> = { f32: GgmlType.F32, f16: GgmlType.F16, q8_0: GgmlType.Q8_0 };

function ggufMetadata(config: GemmaConfig, vocab: SpmVocab, dtype: TinyGemmaDtype): GgufMetadata {
  return {
    "general.architecture": str("gemma"),
    "general.name": str("tiny-gemma-fixture"),
    "general.file_type": u32(FILE_TYPE[dtype]),
    "gemma.context_length": u32(config.contextLength),
    "gemma.embedding_length": u32(config.hiddenSize),
    "gemma.block_count": u32(config.numLayers),
    "gemma.feed_forward_length": u32(config.intermediateSize),
    "gemma.attention.head_count": u32(config.numHeads),
    "gemma.attention.head_count_kv": u32(config.numKvHeads),
    "gemma.attention.key_length": u32(config.headDim),
    "gemma.attention.value_length": u32(config.headDim),
    "gemma.attention.layer_norm_rms_epsilon": f32(config.rmsNormEps),
    // Like the real Gemma GGUFs, no gemma.rope.freq_base: llama.cpp defaults to 10000.
    ...spmTokenizerMetadata(vocab),
  };
}

function ggufTensors(config: GemmaConfig, weights: GemmaWeights, dtype: TinyGemmaDtype): GgufTensorSource[] {
  const matrixType = TENSOR_TYPE[dtype];
  const { hiddenSize: d, numHeads, numKvHeads, headDim, intermediateSize: ff } = config;
  const plusOne = (offsets: Float32Array): Float32Array => offsets.map((w) => 1 + w);
  const norm = (name: string, offsets: Float32Array): GgufTensorSource => ({ name, shape: [d], type: GgmlType.F32, load: () => plusOne(offsets) });
  // HF Linear [out, in] is GGUF ne [in, out]: same bytes, innermost dim first.
  const matrix = (name: string, values: Float32Array, outDim: number, inDim: number): GgufTensorSource => ({
    name,
    shape: [inDim, outDim],
    type: matrixType,
    load: () => values,
  });

  const tensors: GgufTensorSource[] = [matrix("token_embd.weight", weights.embedTokens, config.vocabSize, d)];
  weights.layers.forEach((layer, i) => {
    tensors.push(
      norm(`blk.${i}.attn_norm.weight`, layer.inputLayernorm),
      matrix(`blk.${i}.attn_q.weight`, layer.qProj, numHeads * headDim, d),
      matrix(`blk.${i}.attn_k.weight`, layer.kProj, numKvHeads * headDim, d),
      matrix(`blk.${i}.attn_v.weight`, layer.vProj, numKvHeads * headDim, d),
      matrix(`blk.${i}.attn_output.weight`, layer.oProj, d, numHeads * headDim),
      norm(`blk.${i}.ffn_norm.weight`, layer.postAttentionLayernorm),
      matrix(`blk.${i}.ffn_gate.weight`, layer.gateProj, ff, d),
      matrix(`blk.${i}.ffn_up.weight`, layer.upProj, ff, d),
      matrix(`blk.${i}.ffn_down.weight`, layer.downProj, d, ff),
    );
  });
  tensors.push(norm("output_norm.weight", weights.finalNorm));
  return tensors;
}

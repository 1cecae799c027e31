// Plain float64 forward pass of an XLMRobertaForSequenceClassification cross-encoder, written from
// Hugging Face's modeling_xlm_roberta.py, and FlagEmbedding's pair construction (API.md), as ground
// truth for what rerankd serves:
//
//   positions p_i = padding_idx + 1 + i = 2 + i                     (no padding in a single pair)
//   x = LayerNorm(word[ids] + position[p] + token_type[0])          (eps = layer_norm_eps)
//   per layer:  a = softmax(q kᵀ / sqrt(head_dim)) v                (bidirectional, per head)
//               x = LayerNorm(x + a Woᵀ + bo)
//               x = LayerNorm(x + W2 gelu_erf(W1 x + b1) + b2)
//   logit = out_proj(tanh(dense(x[0])))                             (classifier on <s>)
//
// Linear weights are Hugging Face's [out, in], row-major. Everything is float64 and naive loops.

import { spmEncodeLines } from "./hf-checkpoint.js";
import { add, attention, linear } from "./reference-math.js";

export interface XlmrConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  /** Hugging Face max_position_embeddings (positions used: 2 .. this - 1). */
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  padTokenId: number;
}

export interface XlmrLayerWeights {
  qWeight: Float32Array;
  qBias: Float32Array;
  kWeight: Float32Array;
  kBias: Float32Array;
  vWeight: Float32Array;
  vBias: Float32Array;
  attnOutWeight: Float32Array;
  attnOutBias: Float32Array;
  attnNormWeight: Float32Array;
  attnNormBias: Float32Array;
  upWeight: Float32Array;
  upBias: Float32Array;
  downWeight: Float32Array;
  downBias: Float32Array;
  outNormWeight: Float32Array;
  outNormBias: Float32Array;
}

export interface XlmrWeights {
  /** [vocab, hidden] */
  wordEmbeddings: Float32Array;
  /** [maxPositionEmbeddings, hidden] (rows 0 and 1 unused: RoBERTa's padding offset) */
  positionEmbeddings: Float32Array;
  /** [typeVocab, hidden] */
  tokenTypeEmbeddings: Float32Array;
  embedNormWeight: Float32Array;
  embedNormBias: Float32Array;
  layers: XlmrLayerWeights[];
  /** classifier.dense [hidden, hidden] */
  denseWeight: Float32Array;
  denseBias: Float32Array;
  /** classifier.out_proj [1, hidden] */
  outProjWeight: Float32Array;
  outProjBias: Float32Array;
}

/** The cross-encoder's raw logit for a token sequence. */
export function xlmrForward(config: XlmrConfig, weights: XlmrWeights, ids: readonly number[]): number {
  const { hiddenSize: d, numHeads, intermediateSize: ff, layerNormEps: eps } = config;
  const n = ids.length;
  if (n === 0) throw new Error("need at least one token");
  if (n + config.padTokenId + 1 > config.maxPositionEmbeddings) throw new Error(`${n} tokens exceed the position embeddings`);
  const headDim = d / numHeads;

  let x: Float64Array[] = ids.map((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) throw new Error(`token id ${id} out of range`);
    const pos = config.padTokenId + 1 + i;
    const row = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      row[j] = weights.wordEmbeddings[id * d + j] + weights.positionEmbeddings[pos * d + j] + weights.tokenTypeEmbeddings[j];
    }
    return layerNorm(row, weights.embedNormWeight, weights.embedNormBias, eps);
  });

  for (const layer of weights.layers) {
    const q = x.map((h) => linear(layer.qWeight, h, d, layer.qBias));
    const k = x.map((h) => linear(layer.kWeight, h, d, layer.kBias));
    const v = x.map((h) => linear(layer.vWeight, h, d, layer.vBias));
    // Bidirectional: every position sees all n; one KV head per query head.
    const attended = q.map((qRow) => attention(qRow, k, v, n, numHeads, 1, headDim));
    x = x.map((h, i) => layerNorm(add(h, linear(layer.attnOutWeight, attended[i], d, layer.attnOutBias)), layer.attnNormWeight, layer.attnNormBias, eps));
    x = x.map((h) => {
      const up = linear(layer.upWeight, h, ff, layer.upBias);
      for (let j = 0; j < ff; j++) up[j] = geluErf(up[j]);
      return layerNorm(add(h, linear(layer.downWeight, up, d, layer.downBias)), layer.outNormWeight, layer.outNormBias, eps);
    });
  }

  const dense = linear(weights.denseWeight, x[0], d, weights.denseBias);
  for (let j = 0; j < d; j++) dense[j] = Math.tanh(dense[j]);
  return linear(weights.outProjWeight, dense, 1, weights.outProjBias)[0];
}

function layerNorm(x: Float64Array, weight: Float32Array, bias: Float32Array, eps: number): Float64Array {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i];
  mean /= x.length;
  let variance = 0;
  for (let i = 0; i < x.length; i++) variance += (x[i] - mean) ** 2;
  variance /= x.length;
  const scale = 1 / Math.sqrt(variance + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] - mean) * scale * weight[i] + bias[i];
  return out;
}

/** nn.GELU() (the "gelu" of XLM-R's config): x Φ(x) = x/2 (1 + erf(x/√2)). */
export function geluErf(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** erf to ~1e-15: its Maclaurin series below 2.5, the continued fraction of erfc above. */
export function erf(x: number): number {
  const a = Math.abs(x);
  let value: number;
  if (a < 2.5) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 100; n++) {
      term *= (-a * a) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    value = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(a) = exp(-a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...))))), evaluated bottom-up.
    let fraction = a;
    for (let k = 80; k >= 1; k--) fraction = a + k / 2 / fraction;
    value = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / fraction;
  }
  return x < 0 ? -value : value;
}

// ---------------------------------------------------------------------------
// FlagEmbedding's encoder-only pair construction (API.md), on Hugging Face XLMRobertaTokenizer ids.

/** XLMRobertaTokenizer's ids: <s>=0, <pad>=1, </s>=2, <unk>=3, SentencePiece id s → s + 1 (its unknown, 0 → 3). */
export const XLMR_IDS = { cls: 0, pad: 1, sep: 2, unk: 3 } as const;

/**
 * Hugging Face's ids for each text (no special tokens), from `spm_encode` on the model's
 * SentencePiece file. spm_encode reads lines, so a text must not contain "\n".
 */
export function xlmrTokenizeAll(spmModelPath: string, texts: readonly string[]): number[][] {
  return spmEncodeLines(spmModelPath, texts).map((ids) => ids.map((s) => (s === 0 ? XLMR_IDS.unk : s + 1)));
}

export function xlmrPairIds(query: readonly number[], passage: readonly number[], maxLength = 512): number[] {
  const q = query.slice(0, Math.floor((maxLength * 3) / 4));
  let p = passage.slice(0, maxLength);
  p = p.slice(0, Math.max(0, maxLength - q.length - 4));
  return [XLMR_IDS.cls, ...q, XLMR_IDS.sep, XLMR_IDS.sep, ...p, XLMR_IDS.sep];
}

/** The tolerance for llama.cpp against the float64 reference (f16 GELU table, f16 K/V in attention). */
export const xlmrTolerance = (reference: number): number => 5e-3 + 3e-3 * Math.abs(reference);

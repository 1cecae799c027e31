// Plain float64 forward pass of a (first-generation) Gemma decoder, written from Hugging
// Face's modeling_gemma.py, used as ground truth for what llama.cpp computes:
//
//   x = embed[ids] * sqrt(hidden)
//   per layer:  h = RMSNorm(x) * (1 + w)          (GemmaRMSNorm: weights stored as offsets from 1)
//               q, k, v = h Wqᵀ, h Wkᵀ, h Wvᵀ       (Linear weights are [out, in])
//               q, k = RoPE(q, k)                  (rotate_half, theta 10000, positions 0..n-1)
//               a = softmax(q kᵀ / sqrt(head_dim) + causal mask) v, KV heads shared by groups of query heads
//               x = x + a Woᵀ
//               h = RMSNorm(x) * (1 + w2);  x = x + Wdown(gelu_tanh(Wgate h) * Wup h)
//   final = RMSNorm(x_last) * (1 + w_final);  logit(t) = final · embed[t]   (tied LM head)
//
// Everything is float64 and naive loops: fixtures are tiny and clarity is the point.

import { add, applyRope, attention, linear, rmsNorm, ropeTables, type DecoderConfig } from "./reference-math.js";

export interface GemmaConfig extends DecoderConfig {
  contextLength: number;
}

/** One decoder layer in Hugging Face convention: Linear weights are [out, in] row-major; norm weights are offsets from 1. */
export interface GemmaLayerWeights {
  inputLayernorm: Float32Array;
  qProj: Float32Array;
  kProj: Float32Array;
  vProj: Float32Array;
  oProj: Float32Array;
  postAttentionLayernorm: Float32Array;
  gateProj: Float32Array;
  upProj: Float32Array;
  downProj: Float32Array;
}

export interface GemmaWeights {
  /** [vocab, hidden] row-major; also the LM head (tied). */
  embedTokens: Float32Array;
  layers: GemmaLayerWeights[];
  finalNorm: Float32Array;
}

export interface ReferenceOutput {
  /** Final-normed hidden state of the last position. */
  lastHidden: Float64Array;
  /** Raw logit of `tokenId` at the last position. */
  logitFor(tokenId: number): number;
}

export function referenceForward(config: GemmaConfig, weights: GemmaWeights, tokenIds: readonly number[]): ReferenceOutput {
  if (tokenIds.length === 0) throw new Error("need at least one token");
  const { hiddenSize, numHeads, numKvHeads, headDim, intermediateSize, rmsNormEps } = config;
  const n = tokenIds.length;
  const qDim = numHeads * headDim;
  const kvDim = numKvHeads * headDim;
  const headsPerKv = numHeads / numKvHeads;
  const embedScale = Math.sqrt(hiddenSize);

  let residual: Float64Array[] = tokenIds.map((id) => {
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) throw new Error(`token id ${id} out of range`);
    const row = new Float64Array(hiddenSize);
    for (let i = 0; i < hiddenSize; i++) row[i] = weights.embedTokens[id * hiddenSize + i] * embedScale;
    return row;
  });

  const rope = ropeTables(n, headDim, config.ropeTheta);

  for (const layer of weights.layers) {
    const inputNorm = onePlus(layer.inputLayernorm);
    const postAttentionNorm = onePlus(layer.postAttentionLayernorm);
    const normed = residual.map((x) => rmsNorm(x, inputNorm, rmsNormEps));
    const q = normed.map((h, pos) => applyRope(linear(layer.qProj, h, qDim), numHeads, headDim, rope, pos));
    const k = normed.map((h, pos) => applyRope(linear(layer.kProj, h, kvDim), numKvHeads, headDim, rope, pos));
    const v = normed.map((h) => linear(layer.vProj, h, kvDim));

    const attended = q.map((qRow, pos) => attention(qRow, k, v, pos + 1, numHeads, headsPerKv, headDim));
    residual = residual.map((x, pos) => add(x, linear(layer.oProj, attended[pos], hiddenSize)));

    residual = residual.map((x) => {
      const h = rmsNorm(x, postAttentionNorm, rmsNormEps);
      const gate = linear(layer.gateProj, h, intermediateSize);
      const up = linear(layer.upProj, h, intermediateSize);
      const act = new Float64Array(intermediateSize);
      for (let i = 0; i < intermediateSize; i++) act[i] = geluTanh(gate[i]) * up[i];
      return add(x, linear(layer.downProj, act, hiddenSize));
    });
  }

  const lastHidden = rmsNorm(residual[n - 1], onePlus(weights.finalNorm), rmsNormEps);
  return {
    lastHidden,
    logitFor(tokenId: number): number {
      let sum = 0;
      for (let i = 0; i < hiddenSize; i++) sum += lastHidden[i] * weights.embedTokens[tokenId * hiddenSize + i];
      return sum;
    },
  };
}

/** GemmaRMSNorm's multiplier 1 + w, in float64 as modeling_gemma.py computes it (not rounded to float32). */
function onePlus(offsets: Float32Array): Float64Array {
  return Float64Array.from(offsets, (w) => 1 + w);
}

/** gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³))). */
function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

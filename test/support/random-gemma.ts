// Seeded random weights for a Gemma decoder in Hugging Face convention (Linear [out, in], RMSNorm
// weights as offsets from 1): the one generator behind the GGUF fixture (tiny-gemma.ts) and the
// Hugging Face checkpoint fixture (hf-checkpoint.ts), which differ only in their scales.

import type { GemmaConfig, GemmaLayerWeights, GemmaWeights } from "./reference-gemma.js";
import { createRng } from "./rng.js";

export interface GemmaWeightScales {
  /** Standard deviation of the embeddings (also the tied LM head). */
  embedding: number;
  /** Standard deviation of the RMSNorm weights (offsets from 1). */
  normOffset: number;
  /** Factor on 1/sqrt(fan_in) for the projections that write the residual stream (o_proj, down_proj). */
  residualGain: number;
}

export type GemmaShape = Pick<GemmaConfig, "vocabSize" | "hiddenSize" | "numLayers" | "numHeads" | "numKvHeads" | "headDim" | "intermediateSize">;

/**
 * Normals drawn from `seed` in checkpoint order (embeddings; per layer input norm, q, k, v, o,
 * post-attention norm, gate, up, down; final norm), projections of std gain/sqrt(fan_in). The
 * order is part of every fixture's bytes: keep it.
 */
export function seededGemmaWeights(shape: GemmaShape, seed: number, scales: GemmaWeightScales): GemmaWeights {
  const rng = createRng(seed);
  const { hiddenSize: d, numHeads, numKvHeads, headDim, intermediateSize: ff } = shape;
  const linear = (outDim: number, inDim: number, gain = 1): Float32Array => rng.normals(outDim * inDim, gain / Math.sqrt(inDim));

  const embedTokens = rng.normals(shape.vocabSize * d, scales.embedding);
  const layers: GemmaLayerWeights[] = [];
  for (let l = 0; l < shape.numLayers; l++) {
    layers.push({
      inputLayernorm: rng.normals(d, scales.normOffset),
      qProj: linear(numHeads * headDim, d),
      kProj: linear(numKvHeads * headDim, d),
      vProj: linear(numKvHeads * headDim, d),
      oProj: linear(d, numHeads * headDim, scales.residualGain),
      postAttentionLayernorm: rng.normals(d, scales.normOffset),
      gateProj: linear(ff, d),
      upProj: linear(ff, d),
      downProj: linear(d, ff, scales.residualGain),
    });
  }
  const finalNorm = rng.normals(d, scales.normOffset);
  return { embedTokens, layers, finalNorm };
}

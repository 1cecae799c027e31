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

export interface GemmaConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
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
    const normed = residual.map((x) => rmsNorm(x, layer.inputLayernorm, rmsNormEps));
    const q = normed.map((h, pos) => applyRope(linear(layer.qProj, h, qDim), numHeads, headDim, rope, pos));
    const k = normed.map((h, pos) => applyRope(linear(layer.kProj, h, kvDim), numKvHeads, headDim, rope, pos));
    const v = normed.map((h) => linear(layer.vProj, h, kvDim));

    const attended = q.map((qRow, pos) => causalAttention(qRow, k, v, pos, numHeads, headsPerKv, headDim));
    residual = residual.map((x, pos) => add(x, linear(layer.oProj, attended[pos], hiddenSize)));

    residual = residual.map((x) => {
      const h = rmsNorm(x, layer.postAttentionLayernorm, rmsNormEps);
      const gate = linear(layer.gateProj, h, intermediateSize);
      const up = linear(layer.upProj, h, intermediateSize);
      const act = new Float64Array(intermediateSize);
      for (let i = 0; i < intermediateSize; i++) act[i] = geluTanh(gate[i]) * up[i];
      return add(x, linear(layer.downProj, act, hiddenSize));
    });
  }

  const lastHidden = rmsNorm(residual[n - 1], weights.finalNorm, rmsNormEps);
  return {
    lastHidden,
    logitFor(tokenId: number): number {
      let sum = 0;
      for (let i = 0; i < hiddenSize; i++) sum += lastHidden[i] * weights.embedTokens[tokenId * hiddenSize + i];
      return sum;
    },
  };
}

/** GemmaRMSNorm: x / sqrt(mean(x²) + eps) * (1 + w). */
function rmsNorm(x: Float64Array, offsetWeight: Float32Array, eps: number): Float64Array {
  let sumSquares = 0;
  for (let i = 0; i < x.length; i++) sumSquares += x[i] * x[i];
  const scale = 1 / Math.sqrt(sumSquares / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * scale * (1 + offsetWeight[i]);
  return out;
}

/** y = W x for a row-major [outDim, x.length] weight. */
function linear(weight: Float32Array, x: Float64Array, outDim: number): Float64Array {
  const inDim = x.length;
  if (weight.length !== outDim * inDim) throw new Error(`weight has ${weight.length} values, expected ${outDim}x${inDim}`);
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let sum = 0;
    const base = o * inDim;
    for (let i = 0; i < inDim; i++) sum += weight[base + i] * x[i];
    y[o] = sum;
  }
  return y;
}

function add(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/** gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³))). */
function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

interface RopeTables {
  cos: Float64Array[];
  sin: Float64Array[];
}

/** cos/sin of pos * theta^(-2i/headDim) for i < headDim/2 (GemmaRotaryEmbedding). */
function ropeTables(positions: number, headDim: number, theta: number): RopeTables {
  const half = headDim / 2;
  const cos: Float64Array[] = [];
  const sin: Float64Array[] = [];
  for (let pos = 0; pos < positions; pos++) {
    const c = new Float64Array(half);
    const s = new Float64Array(half);
    for (let i = 0; i < half; i++) {
      const angle = pos / Math.pow(theta, (2 * i) / headDim);
      c[i] = Math.cos(angle);
      s[i] = Math.sin(angle);
    }
    cos.push(c);
    sin.push(s);
  }
  return { cos, sin };
}

/** x * cos + rotate_half(x) * sin per head, where rotate_half(x) = [-x2, x1] for halves x1, x2. */
function applyRope(x: Float64Array, heads: number, headDim: number, rope: RopeTables, pos: number): Float64Array {
  const half = headDim / 2;
  const cos = rope.cos[pos];
  const sin = rope.sin[pos];
  const out = new Float64Array(x.length);
  for (let h = 0; h < heads; h++) {
    const base = h * headDim;
    for (let i = 0; i < half; i++) {
      const x1 = x[base + i];
      const x2 = x[base + i + half];
      out[base + i] = x1 * cos[i] - x2 * sin[i];
      out[base + i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
  return out;
}

/** Attention output (all heads concatenated) of position `pos` over positions 0..pos. */
function causalAttention(
  q: Float64Array,
  keys: Float64Array[],
  values: Float64Array[],
  pos: number,
  numHeads: number,
  headsPerKv: number,
  headDim: number,
): Float64Array {
  const out = new Float64Array(numHeads * headDim);
  const scale = 1 / Math.sqrt(headDim);
  const scores = new Float64Array(pos + 1);
  for (let h = 0; h < numHeads; h++) {
    const qBase = h * headDim;
    const kvBase = Math.floor(h / headsPerKv) * headDim;
    let max = -Infinity;
    for (let s = 0; s <= pos; s++) {
      let dot = 0;
      for (let i = 0; i < headDim; i++) dot += q[qBase + i] * keys[s][kvBase + i];
      scores[s] = dot * scale;
      max = Math.max(max, scores[s]);
    }
    let total = 0;
    for (let s = 0; s <= pos; s++) {
      scores[s] = Math.exp(scores[s] - max);
      total += scores[s];
    }
    for (let s = 0; s <= pos; s++) {
      const weight = scores[s] / total;
      for (let i = 0; i < headDim; i++) out[qBase + i] += weight * values[s][kvBase + i];
    }
  }
  return out;
}

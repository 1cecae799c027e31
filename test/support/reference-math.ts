// The float64 building blocks the reference forwards (reference-gemma.ts, reference-qwen3.ts,
// reference-xlmr.ts) share: one copy, so a fix to the ground truth reaches every family.
// Naive loops on purpose: fixtures are tiny and clarity is the point.

/** The shape both decoder references (Gemma, Qwen3) are built from: GQA attention, RoPE, RMSNorm, gated FFN. */
export interface DecoderConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
}

/** x / sqrt(mean(x²) + eps) * w (Gemma's norm weights are offsets from 1: it passes 1 + w). */
export function rmsNorm(x: Float64Array, weight: ArrayLike<number>, eps: number): Float64Array {
  let sumSquares = 0;
  for (let i = 0; i < x.length; i++) sumSquares += x[i] * x[i];
  const scale = 1 / Math.sqrt(sumSquares / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * scale * weight[i];
  return out;
}

/** y = W x (+ b) for a row-major [outDim, x.length] weight, Hugging Face's Linear layout. */
export function linear(weight: Float32Array, x: Float64Array, outDim: number, bias?: Float32Array): Float64Array {
  const inDim = x.length;
  if (weight.length !== outDim * inDim) throw new Error(`weight has ${weight.length} values, expected ${outDim}x${inDim}`);
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let sum = bias ? bias[o] : 0;
    const base = o * inDim;
    for (let i = 0; i < inDim; i++) sum += weight[base + i] * x[i];
    y[o] = sum;
  }
  return y;
}

export function add(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

export interface RopeTables {
  cos: Float64Array[];
  sin: Float64Array[];
}

/** cos/sin of pos * theta^(-2i/headDim) for i < headDim/2 (Hugging Face's rotary embedding). */
export function ropeTables(positions: number, headDim: number, theta: number): RopeTables {
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
export function applyRope(x: Float64Array, heads: number, headDim: number, rope: RopeTables, pos: number): Float64Array {
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

/**
 * softmax(q kᵀ / sqrt(head_dim)) v for one query row, all heads concatenated, over key positions
 * 0..visible-1: `visible` is pos + 1 for a causal decoder, keys.length for a bidirectional encoder.
 * Query head h reads KV head floor(h / headsPerKv) (grouped-query attention; 1 for plain multi-head).
 */
export function attention(
  q: Float64Array,
  keys: readonly Float64Array[],
  values: readonly Float64Array[],
  visible: number,
  numHeads: number,
  headsPerKv: number,
  headDim: number,
): Float64Array {
  const out = new Float64Array(numHeads * headDim);
  const scale = 1 / Math.sqrt(headDim);
  const scores = new Float64Array(visible);
  for (let h = 0; h < numHeads; h++) {
    const qBase = h * headDim;
    const kvBase = Math.floor(h / headsPerKv) * headDim;
    let max = -Infinity;
    for (let s = 0; s < visible; s++) {
      let dot = 0;
      for (let i = 0; i < headDim; i++) dot += q[qBase + i] * keys[s][kvBase + i];
      scores[s] = dot * scale;
      max = Math.max(max, scores[s]);
    }
    let total = 0;
    for (let s = 0; s < visible; s++) {
      scores[s] = Math.exp(scores[s] - max);
      total += scores[s];
    }
    for (let s = 0; s < visible; s++) {
      const weight = scores[s] / total;
      for (let i = 0; i < headDim; i++) out[qBase + i] += weight * values[s][kvBase + i];
    }
  }
  return out;
}

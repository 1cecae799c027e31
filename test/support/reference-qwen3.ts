// References for Qwen3-Reranker, written independently of src/ and llama.cpp:
//
//  1. Hugging Face's byte-level BPE tokenizer as Qwen2TokenizerFast's tokenizer.json configures it:
//     NFC normalization; added tokens split off first; the Qwen2 pre-tokenizer regex; GPT-2's
//     byte→unicode map; BPE by merge rank (lowest rank first, leftmost on ties).
//  2. A plain float64 forward pass of a Qwen3 decoder (modeling_qwen3.py):
//       per layer: h = RMSNorm(x)·w;  q,k,v = h Wᵀ;  q,k = RMSNorm_per_head(q,k)·w_q/k_norm;
//                  RoPE (rotate_half, theta); causal GQA attention; x += a Woᵀ;
//                  h = RMSNorm(x)·w2;  x += Wdown(silu(Wgate h) · Wup h)
//       final = RMSNorm(x_last)·w_f;  logit(t) = final · lm_head[t]
//  3. The model card's pair construction (format_instruction / process_inputs / compute_logits).

import { add, applyRope, attention, linear, rmsNorm, ropeTables, type DecoderConfig } from "./reference-math.js";

// ---------------------------------------------------------------------------
// 1. Byte-level BPE.

/** GPT-2's bytes_to_unicode(): printable bytes map to themselves, the rest to U+0100 on. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const map = new Array<string>(256);
  bs.forEach((b, i) => (map[b] = String.fromCodePoint(cs[i])));
  return map;
}

/** Unicode White_Space (what \s means to the Rust regex engine and to llama.cpp), not JS's \s (which adds U+FEFF). */
const WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
/** Qwen2's pre-tokenizer regex from its tokenizer.json, with (?i:...) spelled out for JS. */
export const QWEN2_PRETOKENIZER = new RegExp(
  `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*|[${WS}]*[\\r\\n]+|[${WS}]+(?![^${WS}])|[${WS}]+`,
  "gu",
);

export function pretokenize(text: string): string[] {
  return text.match(QWEN2_PRETOKENIZER) ?? [];
}

export interface BpeVocabulary {
  /** Token text (byte-level unicode) → id. */
  vocab: ReadonlyMap<string, number>;
  /** Merges in rank order, as [left, right]. */
  merges: ReadonlyArray<readonly [string, string]>;
  /** Added tokens (content → id); `special` ones are CONTROL tokens in llama.cpp. */
  added: ReadonlyArray<{ content: string; id: number; special: boolean }>;
}

export class ReferenceBpeTokenizer {
  private readonly byteChars = bytesToUnicode();
  private readonly ranks = new Map<string, number>();

  constructor(private readonly v: BpeVocabulary) {
    v.merges.forEach(([a, b], rank) => this.ranks.set(`${a} ${b}`, rank));
  }

  /**
   * HF tokenizer.encode(text, add_special_tokens=False). `specials`: "all" splits every added
   * token off (HF's own behaviour, and how rerankd tokenizes its template); "non-special" only the
   * non-special added tokens (how rerankd tokenizes user text: control-token text stays literal).
   */
  encode(text: string, specials: "all" | "non-special" = "all"): number[] {
    const added = this.v.added.filter((a) => specials === "all" || !a.special).sort((a, b) => b.content.length - a.content.length);
    const ids: number[] = [];
    const normalized = text.normalize("NFC");
    let rest = normalized;
    while (rest.length > 0) {
      let at = -1;
      let hit: { content: string; id: number } | undefined;
      for (const a of added) {
        const i = rest.indexOf(a.content);
        if (i >= 0 && (at < 0 || i < at || (i === at && hit !== undefined && a.content.length > hit.content.length))) {
          at = i;
          hit = a;
        }
      }
      const plain = hit ? rest.slice(0, at) : rest;
      for (const word of pretokenize(plain)) ids.push(...this.bpe(word));
      if (!hit) break;
      ids.push(hit.id);
      rest = rest.slice(at + hit.content.length);
    }
    return ids;
  }

  private bpe(word: string): number[] {
    let symbols = Array.from(new TextEncoder().encode(word), (b) => this.byteChars[b]);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = [symbols[best], symbols[best + 1]];
      const next: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
          next.push(a + b);
          i++;
        } else {
          next.push(symbols[i]);
        }
      }
      symbols = next;
    }
    return symbols.map((s) => {
      const id = this.v.vocab.get(s);
      if (id === undefined) throw new Error(`BPE produced ${JSON.stringify(s)}, not in the vocabulary`);
      return id;
    });
  }
}

// ---------------------------------------------------------------------------
// 2. Qwen3 forward.

export interface Qwen3Config extends DecoderConfig {
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
}

export interface Qwen3LayerWeights {
  inputLayernorm: Float32Array;
  qProj: Float32Array;
  kProj: Float32Array;
  vProj: Float32Array;
  qNorm: Float32Array;
  kNorm: Float32Array;
  oProj: Float32Array;
  postAttentionLayernorm: Float32Array;
  gateProj: Float32Array;
  upProj: Float32Array;
  downProj: Float32Array;
}

export interface Qwen3Weights {
  embedTokens: Float32Array;
  layers: Qwen3LayerWeights[];
  norm: Float32Array;
  /** [vocab, hidden]; absent when tied to embedTokens. */
  lmHead?: Float32Array;
}

/** The final-normed hidden state at the last position, and the logit of any token there. */
export function qwen3Forward(config: Qwen3Config, w: Qwen3Weights, ids: readonly number[]): { logit(token: number): number } {
  const { hiddenSize: d, numHeads, numKvHeads, headDim, intermediateSize: ff, rmsNormEps: eps } = config;
  const n = ids.length;
  if (n === 0) throw new Error("need at least one token");
  const qDim = numHeads * headDim;
  const kvDim = numKvHeads * headDim;
  let x: Float64Array[] = ids.map((id) => {
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) throw new Error(`token id ${id} out of range`);
    return Float64Array.from(w.embedTokens.subarray(id * d, (id + 1) * d));
  });
  const rope = ropeTables(n, headDim, config.ropeTheta);
  const headNorm = (v: Float64Array, heads: number, weight: Float32Array): Float64Array => {
    const out = new Float64Array(v.length);
    for (let h = 0; h < heads; h++) out.set(rmsNorm(v.subarray(h * headDim, (h + 1) * headDim), weight, eps), h * headDim);
    return out;
  };
  for (const layer of w.layers) {
    const h = x.map((row) => rmsNorm(row, layer.inputLayernorm, eps));
    const q = h.map((row, pos) => applyRope(headNorm(linear(layer.qProj, row, qDim), numHeads, layer.qNorm), numHeads, headDim, rope, pos));
    const k = h.map((row, pos) => applyRope(headNorm(linear(layer.kProj, row, kvDim), numKvHeads, layer.kNorm), numKvHeads, headDim, rope, pos));
    const v = h.map((row) => linear(layer.vProj, row, kvDim));
    const attended = q.map((row, pos) => attention(row, k, v, pos + 1, numHeads, numHeads / numKvHeads, headDim));
    x = x.map((row, pos) => add(row, linear(layer.oProj, attended[pos], d)));
    x = x.map((row) => {
      const hh = rmsNorm(row, layer.postAttentionLayernorm, eps);
      const gate = linear(layer.gateProj, hh, ff);
      const up = linear(layer.upProj, hh, ff);
      for (let i = 0; i < ff; i++) gate[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
      return add(row, linear(layer.downProj, gate, d));
    });
  }
  const last = rmsNorm(x[n - 1], w.norm, eps);
  const head = w.lmHead ?? w.embedTokens;
  return {
    logit(token: number) {
      let sum = 0;
      for (let i = 0; i < d; i++) sum += last[i] * head[token * d + i];
      return sum;
    },
  };
}

// ---------------------------------------------------------------------------
// 3. The model card's pair construction and score.

export const QWEN3_PREFIX =
  '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n';
export const QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
export const QWEN3_DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query";

/**
 * format_instruction + process_inputs: prefix + tok(body)[:max_length - len(prefix) - len(suffix)] + suffix.
 * User text is tokenized with control tokens literal (rerankd's rule; the card's tokenizer would split them).
 */
export function qwen3PairIds(tok: ReferenceBpeTokenizer, query: string, document: string, maxLength = 8192, instruction = QWEN3_DEFAULT_INSTRUCTION): number[] {
  const prefix = tok.encode(QWEN3_PREFIX);
  const suffix = tok.encode(QWEN3_SUFFIX);
  const body = tok.encode(`<Instruct>: ${instruction}\n<Query>: ${query}\n<Document>: ${document}`, "non-special");
  return [...prefix, ...body.slice(0, Math.max(0, maxLength - prefix.length - suffix.length)), ...suffix];
}

/** compute_logits' raw score: logit("yes") - logit("no") at the last position (its sigmoid is the card's score). */
export function qwen3RawScore(config: Qwen3Config, weights: Qwen3Weights, ids: readonly number[], yes: number, no: number): number {
  const out = qwen3Forward(config, weights, ids);
  return out.logit(yes) - out.logit(no);
}

/** llama.cpp keeps K/V in f16 and runs the LM head in f32: a few 1e-3 on fixture logits. */
export const qwen3Tolerance = (reference: number): number => 1e-2 + 3e-3 * Math.abs(reference);

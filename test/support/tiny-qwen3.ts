// A tiny random-weight Qwen3-Reranker (Qwen3ForCausalLM), as GGUF (architecture "qwen3"), cached
// under <repo>/.cache/fixtures/, with a byte-level BPE vocabulary learned here from the test corpus
// and laid out like Qwen's:
//
//   ids 0..255: the 256 byte characters (GPT-2's bytes_to_unicode order), then the learned merges'
//   tokens, then the added tokens <|endoftext|>, <|im_start|>, <|im_end|> (special: CONTROL in
//   GGUF) and <think>, </think> (not special: USER_DEFINED), as in Qwen3's tokenizer.json.
//   "yes" and "no" are single tokens (merges are added until they are).
//
// Two GGUF layouts of the same weights:
//  - "lm-head": a plain conversion (the LM head tied to the embeddings, or output.weight), which
//    rerankd scores from the "yes"/"no" logits;
//  - "rerank-head": what llama.cpp's convert_hf_to_gguf.py makes of a Qwen3-Reranker: pooling
//    RANK, classifier labels ["yes", "no"], a 2-row cls.output.weight of the LM head's "yes" and
//    "no" rows, the rerank chat template, and no output.weight.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { decodeF16, decodeQ8_0, encodeF16, encodeQ8_0 } from "../../src/models/gguf/quantize.js";
import { GgmlType, arr, bool, f32, str, u32, type GgufMetadata } from "../../src/models/gguf/types.js";
import { writeGguf, type GgufTensorSource } from "../../src/models/gguf/writer.js";
import { ReferenceBpeTokenizer, bytesToUnicode, pretokenize, type BpeVocabulary, type Qwen3Config, type Qwen3Weights } from "./reference-qwen3.js";
import { createRng } from "./rng.js";

const BUILDER_VERSION = 1;
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURE_DIR = join(REPO_ROOT, ".cache", "fixtures");
const CORPUS_FILES = [fileURLToPath(new URL("./corpus.txt", import.meta.url)), fileURLToPath(new URL("./spm/train.txt", import.meta.url))];

export const QWEN3_ADDED_TOKENS = [
  { content: "<|endoftext|>", special: true },
  { content: "<|im_start|>", special: true },
  { content: "<|im_end|>", special: true },
  { content: "<think>", special: false },
  { content: "</think>", special: false },
] as const;

/** Words that must be one token each: the scores' "yes" and "no". */
const REQUIRED_WORDS = ["yes", "no"];

export interface TinyBpe extends BpeVocabulary {
  /** Every token's text by id (byte-level unicode; added tokens verbatim). */
  tokens: string[];
}

/** Learns `merges` byte-level BPE merges from the corpus (most frequent pair first, ties by text). */
export function trainTinyBpe(corpus: string, maxMerges = 500): TinyBpe {
  const byteChars = bytesToUnicode();
  const counts = new Map<string, number>();
  for (const word of pretokenize(corpus.normalize("NFC"))) counts.set(word, (counts.get(word) ?? 0) + 1);
  const toSymbols = (w: string) => Array.from(new TextEncoder().encode(w), (b) => byteChars[b]);
  const words = [...counts].map(([w, count]) => ({ symbols: toSymbols(w), count }));
  const merges: Array<[string, string]> = [];
  const known = new Set(byteChars);
  const apply = (symbols: string[], a: string, b: string) => {
    const out: string[] = [];
    for (let i = 0; i < symbols.length; i++) {
      if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
        out.push(a + b);
        i++;
      } else out.push(symbols[i]);
    }
    return out;
  };
  while (merges.length < maxMerges) {
    const pairs = new Map<string, { a: string; b: string; count: number }>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        const e = pairs.get(key);
        if (e) e.count += count;
        else pairs.set(key, { a: symbols[i], b: symbols[i + 1], count });
      }
    }
    let best: { key: string; a: string; b: string; count: number } | undefined;
    for (const [key, e] of pairs) if (!best || e.count > best.count || (e.count === best.count && key < best.key)) best = { key, ...e };
    if (!best || best.count < 2) break;
    if (known.has(best.a + best.b)) {
      // A merge whose result exists already would duplicate a token: apply it, list it once.
      for (const w of words) w.symbols = apply(w.symbols, best.a, best.b);
      continue;
    }
    merges.push([best.a, best.b]);
    known.add(best.a + best.b);
    for (const w of words) w.symbols = apply(w.symbols, best.a, best.b);
  }
  // Make each required word a single token: merge its first two symbols until it is.
  const tokens = [...byteChars, ...merges.map(([a, b]) => a + b)];
  const build = (): BpeVocabulary => ({ vocab: new Map(tokens.map((t, i) => [t, i])), merges, added: [] });
  for (const word of REQUIRED_WORDS) {
    for (;;) {
      const ids = new ReferenceBpeTokenizer(build()).encode(word);
      if (ids.length === 1) break;
      const [a, b] = [tokens[ids[0]], tokens[ids[1]]];
      merges.push([a, b]);
      tokens.push(a + b);
    }
  }
  const added = QWEN3_ADDED_TOKENS.map((t, i) => ({ content: t.content, special: t.special, id: tokens.length + i }));
  tokens.push(...added.map((a) => a.content));
  return { tokens, vocab: new Map(tokens.map((t, i) => [t, i])), merges, added };
}

export type TinyQwen3Layout = "lm-head" | "rerank-head";

export interface TinyQwen3Options {
  layout?: TinyQwen3Layout;
  dtype?: "f32" | "f16";
  tied?: boolean;
  seed?: number;
  /** general.name (its "reranker" is one way a Qwen3 GGUF says what it is). */
  name?: string;
}

export interface TinyQwen3 {
  path: string;
  config: Qwen3Config;
  weights: Qwen3Weights;
  bpe: TinyBpe;
  tokenizer: ReferenceBpeTokenizer;
  yes: number;
  no: number;
}

export function loadQwen3Corpus(): string {
  return CORPUS_FILES.map((f) => readFileSync(f, "utf8")).join("\n");
}

export async function buildTinyQwen3(options: TinyQwen3Options = {}): Promise<TinyQwen3> {
  const layout = options.layout ?? "lm-head";
  const dtype = options.dtype ?? "f32";
  const tied = options.tied ?? true;
  const seed = options.seed ?? 20250605;
  const name = options.name ?? "tiny-qwen3-reranker-fixture";
  const corpus = loadQwen3Corpus();
  const bpe = trainTinyBpe(corpus);
  const tokenizer = new ReferenceBpeTokenizer(bpe);
  const config: Qwen3Config = {
    vocabSize: bpe.tokens.length,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    intermediateSize: 128,
    rmsNormEps: 1e-6,
    ropeTheta: 1000000,
    maxPositionEmbeddings: 40960,
    tieWordEmbeddings: tied,
  };
  const weights = randomQwen3Weights(config, seed);
  const [yes] = tokenizer.encode("yes");
  const [no] = tokenizer.encode("no");
  const key = createHash("sha256")
    .update(JSON.stringify({ BUILDER_VERSION, layout, dtype, seed, name, config }))
    .update(corpus)
    .digest("hex")
    .slice(0, 16);
  const path = join(FIXTURE_DIR, `tiny-qwen3-${layout}-${dtype}-${key}.gguf`);
  if (!existsSync(path)) {
    mkdirSync(FIXTURE_DIR, { recursive: true });
    await writeGguf(path, {
      metadata: qwen3Metadata(config, bpe, layout, dtype, name),
      tensors: qwen3Tensors(config, weights, layout, dtype, yes, no),
    });
  }
  return { path, config, weights, bpe, tokenizer, yes, no };
}

/** Seeded weights; embeddings of std 0.5 and a boosted residual so the yes−no logit spreads over a few units. */
export function randomQwen3Weights(config: Qwen3Config, seed: number): Qwen3Weights {
  const rng = createRng(seed);
  const { hiddenSize: d, numHeads, numKvHeads, headDim, intermediateSize: ff } = config;
  const linear = (outDim: number, inDim: number, gain = 1) => rng.normals(outDim * inDim, gain / Math.sqrt(inDim));
  const norm = (n: number) => rng.normals(n, 0.2).map((w) => 1 + w);
  const embedTokens = rng.normals(config.vocabSize * d, 0.5);
  const layers = Array.from({ length: config.numLayers }, () => ({
    inputLayernorm: norm(d),
    qProj: linear(numHeads * headDim, d),
    kProj: linear(numKvHeads * headDim, d),
    vProj: linear(numKvHeads * headDim, d),
    qNorm: norm(headDim),
    kNorm: norm(headDim),
    oProj: linear(d, numHeads * headDim, 1.5),
    postAttentionLayernorm: norm(d),
    gateProj: linear(ff, d),
    upProj: linear(ff, d),
    downProj: linear(d, ff, 1.5),
  }));
  const normW = norm(d);
  return { embedTokens, layers, norm: normW, ...(config.tieWordEmbeddings ? {} : { lmHead: rng.normals(config.vocabSize * d, 0.5) }) };
}

/** The weights llama.cpp computes with when the matrices are stored as f16 or q8_0. */
export function storedQwen3Weights(w: Qwen3Weights, dtype: "f32" | "f16" | "q8_0"): Qwen3Weights {
  if (dtype === "f32") return w;
  const r = (v: Float32Array) => (dtype === "f16" ? decodeF16(encodeF16(v)) : decodeQ8_0(encodeQ8_0(v)));
  return {
    embedTokens: r(w.embedTokens),
    norm: w.norm,
    ...(w.lmHead ? { lmHead: r(w.lmHead) } : {}),
    layers: w.layers.map((l) => ({ ...l, qProj: r(l.qProj), kProj: r(l.kProj), vProj: r(l.vProj), oProj: r(l.oProj), gateProj: r(l.gateProj), upProj: r(l.upProj), downProj: r(l.downProj) })),
  };
}

const TOKEN_TYPE = { NORMAL: 1, CONTROL: 3, USER_DEFINED: 4 } as const;
const RERANK_TEMPLATE =
  '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n' +
  "<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n" +
  "<|im_start|>assistant\n<think>\n\n</think>\n\n";

function qwen3Metadata(c: Qwen3Config, bpe: TinyBpe, layout: TinyQwen3Layout, dtype: "f32" | "f16", name: string): GgufMetadata {
  const types = bpe.tokens.map((_, id) => {
    const added = bpe.added.find((a) => a.id === id);
    return added ? (added.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED) : TOKEN_TYPE.NORMAL;
  });
  const id = (content: string) => bpe.added.find((a) => a.content === content)?.id ?? -1;
  const md: GgufMetadata = {
    "general.architecture": str("qwen3"),
    "general.type": str("model"),
    "general.name": str(name),
    "general.file_type": u32(dtype === "f16" ? 1 : 0),
    "qwen3.context_length": u32(c.maxPositionEmbeddings),
    "qwen3.embedding_length": u32(c.hiddenSize),
    "qwen3.block_count": u32(c.numLayers),
    "qwen3.feed_forward_length": u32(c.intermediateSize),
    "qwen3.attention.head_count": u32(c.numHeads),
    "qwen3.attention.head_count_kv": u32(c.numKvHeads),
    "qwen3.attention.key_length": u32(c.headDim),
    "qwen3.attention.value_length": u32(c.headDim),
    "qwen3.attention.layer_norm_rms_epsilon": f32(c.rmsNormEps),
    "qwen3.rope.freq_base": f32(c.ropeTheta),
    "tokenizer.ggml.model": str("gpt2"),
    "tokenizer.ggml.pre": str("qwen2"),
    "tokenizer.ggml.tokens": arr("string", bpe.tokens),
    "tokenizer.ggml.token_type": arr("i32", types),
    "tokenizer.ggml.merges": arr("string", bpe.merges.map(([a, b]) => `${a} ${b}`)),
    "tokenizer.ggml.eos_token_id": u32(id("<|im_end|>")),
    "tokenizer.ggml.padding_token_id": u32(id("<|endoftext|>")),
    "tokenizer.ggml.bos_token_id": u32(id("<|endoftext|>")),
    "tokenizer.ggml.add_bos_token": bool(false),
  };
  if (layout === "rerank-head") {
    md["qwen3.pooling_type"] = u32(4);
    md["qwen3.classifier.output_labels"] = arr("string", ["yes", "no"]);
    md["tokenizer.chat_template.rerank"] = str(RERANK_TEMPLATE);
  }
  return md;
}

function qwen3Tensors(c: Qwen3Config, w: Qwen3Weights, layout: TinyQwen3Layout, dtype: "f32" | "f16", yes: number, no: number): GgufTensorSource[] {
  const { hiddenSize: d, numHeads, numKvHeads, headDim, intermediateSize: ff } = c;
  const mtype = dtype === "f16" ? GgmlType.F16 : GgmlType.F32;
  const vector = (name: string, v: Float32Array): GgufTensorSource => ({ name, shape: [v.length], type: GgmlType.F32, load: () => v });
  const matrix = (name: string, v: Float32Array, outDim: number, inDim: number): GgufTensorSource => ({ name, shape: [inDim, outDim], type: mtype, load: () => v });
  const tensors: GgufTensorSource[] = [matrix("token_embd.weight", w.embedTokens, c.vocabSize, d)];
  w.layers.forEach((l, i) => {
    const b = `blk.${i}.`;
    tensors.push(
      vector(`${b}attn_norm.weight`, l.inputLayernorm),
      matrix(`${b}attn_q.weight`, l.qProj, numHeads * headDim, d),
      matrix(`${b}attn_k.weight`, l.kProj, numKvHeads * headDim, d),
      matrix(`${b}attn_v.weight`, l.vProj, numKvHeads * headDim, d),
      vector(`${b}attn_q_norm.weight`, l.qNorm),
      vector(`${b}attn_k_norm.weight`, l.kNorm),
      matrix(`${b}attn_output.weight`, l.oProj, d, numHeads * headDim),
      vector(`${b}ffn_norm.weight`, l.postAttentionLayernorm),
      matrix(`${b}ffn_gate.weight`, l.gateProj, ff, d),
      matrix(`${b}ffn_up.weight`, l.upProj, ff, d),
      matrix(`${b}ffn_down.weight`, l.downProj, d, ff),
    );
  });
  tensors.push(vector("output_norm.weight", w.norm));
  const head = w.lmHead ?? w.embedTokens;
  if (layout === "rerank-head") {
    const rows = new Float32Array(2 * d);
    rows.set(head.subarray(yes * d, (yes + 1) * d), 0);
    rows.set(head.subarray(no * d, (no + 1) * d), d);
    tensors.push(matrix("cls.output.weight", rows, 2, d));
  } else if (w.lmHead) {
    tensors.push(matrix("output.weight", w.lmHead, c.vocabSize, d));
  }
  return tensors;
}

// ---------------------------------------------------------------------------
// The same model as a Hugging Face checkpoint folder (for the converter).

/** Qwen2's pre-tokenizer regex as its tokenizer.json writes it. */
const QWEN2_SPLIT_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * Writes `dir` as Qwen/Qwen3-Reranker-0.6B's repository lays it out: config.json
 * (Qwen3ForCausalLM), tokenizer.json (byte-level BPE, NFC, Qwen2's split regex; merges as pairs),
 * tokenizer_config.json and model.safetensors (lm_head.weight only when untied).
 */
export async function writeHfQwen3Checkpoint(dir: string, model: TinyQwen3, options: { configOverrides?: Record<string, unknown>; stringMerges?: boolean } = {}): Promise<void> {
  const { mkdir: mkdirAsync, writeFile } = await import("node:fs/promises");
  const { writeSafetensors } = await import("../../src/models/safetensors/index.js");
  await mkdirAsync(dir, { recursive: true });
  const c = model.config;
  const id = (content: string) => model.bpe.added.find((a) => a.content === content)?.id ?? -1;
  await writeFile(
    join(dir, "config.json"),
    JSON.stringify({
      architectures: ["Qwen3ForCausalLM"],
      model_type: "qwen3",
      vocab_size: c.vocabSize,
      hidden_size: c.hiddenSize,
      intermediate_size: c.intermediateSize,
      num_hidden_layers: c.numLayers,
      num_attention_heads: c.numHeads,
      num_key_value_heads: c.numKvHeads,
      head_dim: c.headDim,
      max_position_embeddings: c.maxPositionEmbeddings,
      rms_norm_eps: c.rmsNormEps,
      rope_theta: c.ropeTheta,
      rope_scaling: null,
      attention_bias: false,
      hidden_act: "silu",
      tie_word_embeddings: c.tieWordEmbeddings,
      bos_token_id: id("<|endoftext|>"),
      eos_token_id: id("<|im_end|>"),
      torch_dtype: "float32",
      ...options.configOverrides,
    }),
  );
  const baseVocab = Object.fromEntries(model.bpe.tokens.slice(0, model.bpe.tokens.length - model.bpe.added.length).map((t, i) => [t, i]));
  await writeFile(
    join(dir, "tokenizer.json"),
    JSON.stringify({
      version: "1.0",
      added_tokens: model.bpe.added.map((a) => ({ id: a.id, content: a.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: a.special })),
      normalizer: { type: "NFC" },
      pre_tokenizer: {
        type: "Sequence",
        pretokenizers: [
          { type: "Split", pattern: { Regex: QWEN2_SPLIT_REGEX }, behavior: "Isolated", invert: false },
          { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      },
      post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
      decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: "",
        end_of_word_suffix: "",
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab: baseVocab,
        merges: model.bpe.merges.map(([a, b]) => (options.stringMerges ? `${a} ${b}` : [a, b])),
      },
    }),
  );
  await writeFile(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({
      add_bos_token: false,
      add_prefix_space: false,
      added_tokens_decoder: Object.fromEntries(model.bpe.added.map((a) => [String(a.id), { content: a.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: a.special }])),
      bos_token: null,
      eos_token: "<|im_end|>",
      pad_token: "<|endoftext|>",
      unk_token: null,
      errors: "replace",
      model_max_length: 131072,
      tokenizer_class: "Qwen2Tokenizer",
      chat_template: "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}",
    }),
  );
  const w = model.weights;
  const d = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const tensors: Array<{ name: string; shape: number[]; dtype: string; data: Float32Array }> = [
    { name: "model.embed_tokens.weight", shape: [c.vocabSize, d], dtype: "F32", data: w.embedTokens },
  ];
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}.`;
    tensors.push(
      { name: `${p}input_layernorm.weight`, shape: [d], dtype: "F32", data: l.inputLayernorm },
      { name: `${p}self_attn.q_proj.weight`, shape: [q, d], dtype: "F32", data: l.qProj },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, d], dtype: "F32", data: l.kProj },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, d], dtype: "F32", data: l.vProj },
      { name: `${p}self_attn.q_norm.weight`, shape: [c.headDim], dtype: "F32", data: l.qNorm },
      { name: `${p}self_attn.k_norm.weight`, shape: [c.headDim], dtype: "F32", data: l.kNorm },
      { name: `${p}self_attn.o_proj.weight`, shape: [d, q], dtype: "F32", data: l.oProj },
      { name: `${p}post_attention_layernorm.weight`, shape: [d], dtype: "F32", data: l.postAttentionLayernorm },
      { name: `${p}mlp.gate_proj.weight`, shape: [c.intermediateSize, d], dtype: "F32", data: l.gateProj },
      { name: `${p}mlp.up_proj.weight`, shape: [c.intermediateSize, d], dtype: "F32", data: l.upProj },
      { name: `${p}mlp.down_proj.weight`, shape: [d, c.intermediateSize], dtype: "F32", data: l.downProj },
    );
  });
  tensors.push({ name: "model.norm.weight", shape: [d], dtype: "F32", data: w.norm });
  if (w.lmHead) tensors.push({ name: "lm_head.weight", shape: [c.vocabSize, d], dtype: "F32", data: w.lmHead });
  await writeSafetensors(join(dir, "model.safetensors"), tensors);
}

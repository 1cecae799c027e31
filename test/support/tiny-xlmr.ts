// A tiny random-weight XLM-RoBERTa cross-encoder (XLMRobertaForSequenceClassification, the shape
// of BAAI/bge-reranker-v2-m3 scaled down), written as the GGUF llama.cpp's convert_hf_to_gguf.py
// makes of one (XLMRobertaModel → architecture "bert"), cached under <repo>/.cache/fixtures/:
//
//  - tokenizer: a SentencePiece *unigram* model trained by Debian's `spm_train` with XLM-R's
//    settings (nmt_nfkc normalization with its precompiled charsmap, dummy prefix, extra
//    whitespace removed, <unk>=0 <s>=1 </s>=2, no byte fallback), stored as XLM-R's
//    `sentencepiece.bpe.model`; in GGUF as tokenizer model "t5" with the fairseq realignment
//    [<s>, <pad>, </s>, <unk>] + pieces[3:], so GGUF id = Hugging Face id = SentencePiece id + 1;
//  - position embeddings: Hugging Face's rows from padding_idx + 1 = 2 on (context 512 = 514 - 2);
//  - the classification head: classifier.dense → `cls`, classifier.out_proj → `cls.output`;
//  - 1-D tensors, norms, position and token-type embeddings stay F32; other matrices per dtype.
//
// Weights are kept in Hugging Face convention ([out, in] row-major), as reference-xlmr.ts reads them.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { decodeF16, decodeQ8_0, encodeF16, encodeQ8_0 } from "../../src/models/gguf/quantize.js";
import { GgmlType, arr, bool, f32, str, u32, type GgufMetadata } from "../../src/models/gguf/types.js";
import { writeGguf, type GgufTensorSource } from "../../src/models/gguf/writer.js";
import { PieceType, readSentencePieceModel, type SentencePieceModel } from "../../src/models/sentencepiece/index.js";
import { spmUnavailableReason } from "./hf-checkpoint.js";
import type { XlmrConfig, XlmrLayerWeights, XlmrWeights } from "./reference-xlmr.js";
import { createRng } from "./rng.js";

/** Bump when the builder's output changes for the same options. */
const BUILDER_VERSION = 2;

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURE_DIR = join(REPO_ROOT, ".cache", "fixtures");
const TRAIN_FILES = [fileURLToPath(new URL("./spm/train.txt", import.meta.url)), fileURLToPath(new URL("./corpus.txt", import.meta.url))];

/** XLM-R's SentencePiece settings (its sentencepiece.bpe.model is a unigram model despite the name). */
const XLMR_SPM_ARGS = [
  "--model_type=unigram",
  "--vocab_size=1200",
  "--hard_vocab_limit=false",
  "--character_coverage=1.0",
  "--unk_id=0",
  "--bos_id=1",
  "--eos_id=2",
  "--pad_id=-1",
  "--normalization_rule_name=nmt_nfkc",
  "--add_dummy_prefix=true",
  "--remove_extra_whitespaces=true",
  "--shuffle_input_sentence=false",
  "--num_threads=1",
];

export { spmUnavailableReason };

/** Path of the trained XLM-R-style `sentencepiece.bpe.model`, training it on first use. */
export async function ensureXlmrSpmModel(): Promise<string> {
  const reason = spmUnavailableReason();
  if (reason) throw new Error(reason);
  const hash = createHash("sha256").update(JSON.stringify(XLMR_SPM_ARGS));
  for (const file of TRAIN_FILES) hash.update(readFileSync(file));
  const dir = join(FIXTURE_DIR, `spm-xlmr-${hash.digest("hex").slice(0, 16)}`);
  const model = join(dir, "sentencepiece.bpe.model");
  if (existsSync(model)) return model;
  await mkdir(FIXTURE_DIR, { recursive: true });
  const work = await mkdtemp(join(FIXTURE_DIR, "spm-xlmr-train-"));
  try {
    execFileSync("spm_train", [`--input=${TRAIN_FILES.join(",")}`, `--model_prefix=${join(work, "sentencepiece.bpe")}`, ...XLMR_SPM_ARGS], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    try {
      await rename(work, dir);
    } catch (err) {
      if (!existsSync(model)) throw err;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return model;
}

export type TinyXlmrDtype = "f32" | "f16" | "q8_0";

export interface TinyXlmrOptions {
  dtype?: TinyXlmrDtype;
  seed?: number;
  numLayers?: number;
  hiddenSize?: number;
  numHeads?: number;
  intermediateSize?: number;
  /** Write `tokenizer.ggml.seperator_token_id` (llama.cpp's converter does, via SpecialVocab). Default true. */
  sepToken?: boolean;
  /**
   * Lay the metadata out as other and older conversions do: no classifier labels (llama.cpp then
   * assumes one output), RANK pooling stated in the file, no separator id, no add_sep.
   */
  legacy?: boolean;
}

export interface TinyXlmr {
  path: string;
  dtype: TinyXlmrDtype;
  config: XlmrConfig;
  /** Source weights in Hugging Face convention, before any f16/q8_0 rounding. */
  weights: XlmrWeights;
  spmModelPath: string;
  spm: SentencePieceModel;
}

export async function buildTinyXlmr(options: TinyXlmrOptions = {}): Promise<TinyXlmr> {
  const dtype = options.dtype ?? "f32";
  const seed = options.seed ?? 20240318;
  const legacy = options.legacy ?? false;
  const sepToken = (options.sepToken ?? true) && !legacy;
  const spmModelPath = await ensureXlmrSpmModel();
  const spm = await readSentencePieceModel(spmModelPath);
  const config: XlmrConfig = {
    // Hugging Face's vocab_size: the pieces, the fairseq offset of 1 and <mask>.
    vocabSize: spm.pieces.length + 2,
    hiddenSize: options.hiddenSize ?? 64,
    numLayers: options.numLayers ?? 2,
    numHeads: options.numHeads ?? 4,
    intermediateSize: options.intermediateSize ?? 128,
    maxPositionEmbeddings: 514,
    typeVocabSize: 1,
    layerNormEps: 1e-5,
    padTokenId: 1,
  };
  const weights = randomXlmrWeights(config, seed);
  const key = createHash("sha256")
    .update(JSON.stringify({ BUILDER_VERSION, dtype, seed, config, sepToken, legacy }))
    .update(readFileSync(spmModelPath))
    .digest("hex")
    .slice(0, 16);
  const path = join(FIXTURE_DIR, `tiny-xlmr-${dtype}-${key}.gguf`);
  if (!existsSync(path)) {
    await mkdir(FIXTURE_DIR, { recursive: true });
    const metadata = xlmrGgufMetadata(config, spm, dtype, sepToken);
    if (legacy) {
      delete metadata["bert.classifier.output_labels"];
      metadata["bert.pooling_type"] = u32(4);
    }
    await writeGguf(path, { metadata, tensors: xlmrGgufTensors(config, weights, dtype) });
  }
  return { path, dtype, config, weights, spmModelPath, spm };
}

/**
 * Seeded weights in Hugging Face convention. LayerNorm weights near 1 and biases near 0 but not
 * equal to them (so a swapped or dropped norm shows), embeddings of std 0.5 so a token's identity
 * and position survive the first LayerNorm, and a classifier whose logit lands around ±2.
 */
export function randomXlmrWeights(config: XlmrConfig, seed: number): XlmrWeights {
  const rng = createRng(seed);
  const { hiddenSize: d, intermediateSize: ff } = config;
  const linear = (outDim: number, inDim: number, gain = 1) => rng.normals(outDim * inDim, gain / Math.sqrt(inDim));
  const bias = (n: number) => rng.normals(n, 0.1);
  const normWeight = (n: number) => rng.normals(n, 0.2).map((w) => 1 + w);
  const layers: XlmrLayerWeights[] = [];
  const wordEmbeddings = rng.normals(config.vocabSize * d, 0.5);
  const positionEmbeddings = rng.normals(config.maxPositionEmbeddings * d, 0.5);
  const tokenTypeEmbeddings = rng.normals(config.typeVocabSize * d, 0.5);
  const embedNormWeight = normWeight(d);
  const embedNormBias = bias(d);
  for (let l = 0; l < config.numLayers; l++) {
    layers.push({
      qWeight: linear(d, d, 2),
      qBias: bias(d),
      kWeight: linear(d, d, 2),
      kBias: bias(d),
      vWeight: linear(d, d),
      vBias: bias(d),
      attnOutWeight: linear(d, d),
      attnOutBias: bias(d),
      attnNormWeight: normWeight(d),
      attnNormBias: bias(d),
      upWeight: linear(ff, d, 1.5),
      upBias: bias(ff),
      downWeight: linear(d, ff),
      downBias: bias(d),
      outNormWeight: normWeight(d),
      outNormBias: bias(d),
    });
  }
  return {
    wordEmbeddings,
    positionEmbeddings,
    tokenTypeEmbeddings,
    embedNormWeight,
    embedNormBias,
    layers,
    denseWeight: linear(d, d, 1.5),
    denseBias: bias(d),
    outProjWeight: linear(1, d, 3),
    outProjBias: bias(1),
  };
}

/** The weights llama.cpp computes with: matrices rounded through the storage type. */
export function storedXlmrWeights(weights: XlmrWeights, dtype: TinyXlmrDtype): XlmrWeights {
  const round = (values: Float32Array): Float32Array => {
    if (dtype === "f16") return decodeF16(encodeF16(values));
    if (dtype === "q8_0") return decodeQ8_0(encodeQ8_0(values));
    return values;
  };
  return {
    ...weights,
    wordEmbeddings: round(weights.wordEmbeddings),
    layers: weights.layers.map((l) => ({
      ...l,
      qWeight: round(l.qWeight),
      kWeight: round(l.kWeight),
      vWeight: round(l.vWeight),
      attnOutWeight: round(l.attnOutWeight),
      upWeight: round(l.upWeight),
      downWeight: round(l.downWeight),
    })),
    denseWeight: round(weights.denseWeight),
    outProjWeight: round(weights.outProjWeight),
  };
}

const FILE_TYPE: Record<TinyXlmrDtype, number> = { f32: 0, f16: 1, q8_0: 7 };
const MATRIX_TYPE: Record<TinyXlmrDtype, GgmlType> = { f32: GgmlType.F32, f16: GgmlType.F16, q8_0: GgmlType.Q8_0 };

/** llama_token_type values. */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** convert_hf_to_gguf.py's _xlmroberta_set_vocab, for a SentencePiece file. */
export function xlmrVocab(spm: SentencePieceModel, vocabSize: number): { tokens: string[]; scores: number[]; types: number[] } {
  let tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  let scores: number[] = new Array<number>(vocabSize).fill(-10000);
  let types: number[] = new Array<number>(vocabSize).fill(TOKEN_TYPE.UNUSED);
  spm.pieces.forEach((p, id) => {
    tokens[id] = p.piece;
    scores[id] = p.score;
    types[id] =
      p.type === PieceType.UNKNOWN ? TOKEN_TYPE.UNKNOWN
      : p.type === PieceType.CONTROL ? TOKEN_TYPE.CONTROL
      : p.type === PieceType.UNUSED ? TOKEN_TYPE.UNUSED
      : p.type === PieceType.BYTE ? TOKEN_TYPE.BYTE
      : TOKEN_TYPE.NORMAL;
  });
  // "realign tokens (see HF tokenizer code)"
  tokens = ["<s>", "<pad>", "</s>", "<unk>", ...tokens.slice(3, -1)];
  scores = [0, 0, 0, 0, ...scores.slice(3, -1)];
  types = [TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.UNKNOWN, ...types.slice(3, -1)];
  return { tokens, scores, types };
}

function xlmrGgufMetadata(config: XlmrConfig, spm: SentencePieceModel, dtype: TinyXlmrDtype, sepToken: boolean): GgufMetadata {
  const vocab = xlmrVocab(spm, config.vocabSize);
  return {
    "general.architecture": str("bert"),
    "general.type": str("model"),
    "general.name": str("tiny-xlm-roberta-reranker-fixture"),
    "general.file_type": u32(FILE_TYPE[dtype]),
    "general.quantization_version": u32(2),
    "bert.context_length": u32(config.maxPositionEmbeddings - (config.padTokenId + 1)),
    "bert.embedding_length": u32(config.hiddenSize),
    "bert.feed_forward_length": u32(config.intermediateSize),
    "bert.block_count": u32(config.numLayers),
    "bert.attention.head_count": u32(config.numHeads),
    "bert.attention.layer_norm_epsilon": f32(config.layerNormEps),
    "bert.attention.causal": bool(false),
    "bert.classifier.output_labels": arr("string", ["LABEL_0"]),
    "tokenizer.ggml.model": str("t5"),
    "tokenizer.ggml.pre": str("default"),
    "tokenizer.ggml.tokens": arr("string", vocab.tokens),
    "tokenizer.ggml.scores": arr("f32", vocab.scores),
    "tokenizer.ggml.token_type": arr("i32", vocab.types),
    "tokenizer.ggml.add_space_prefix": bool(spm.normalizerSpec.addDummyPrefix),
    "tokenizer.ggml.token_type_count": u32(config.typeVocabSize),
    "tokenizer.ggml.remove_extra_whitespaces": bool(spm.normalizerSpec.removeExtraWhitespaces),
    "tokenizer.ggml.precompiled_charsmap": arr("u8", spm.normalizerSpec.precompiledCharsmap),
    "tokenizer.ggml.bos_token_id": u32(0),
    "tokenizer.ggml.eos_token_id": u32(2),
    "tokenizer.ggml.unknown_token_id": u32(3),
    ...(sepToken ? { "tokenizer.ggml.seperator_token_id": u32(2) } : {}),
    "tokenizer.ggml.padding_token_id": u32(1),
    "tokenizer.ggml.cls_token_id": u32(0),
    "tokenizer.ggml.mask_token_id": u32(config.vocabSize - 1),
    "tokenizer.ggml.add_bos_token": bool(true),
    "tokenizer.ggml.add_eos_token": bool(true),
    // gguf-py's SpecialVocab reads XLM-R's RobertaProcessing post-processor as bos + eos + sep.
    ...(sepToken ? { "tokenizer.ggml.add_sep_token": bool(true) } : {}),
  };
}

function xlmrGgufTensors(config: XlmrConfig, w: XlmrWeights, dtype: TinyXlmrDtype): GgufTensorSource[] {
  const d = config.hiddenSize;
  const ff = config.intermediateSize;
  const vector = (name: string, values: Float32Array): GgufTensorSource => ({ name, shape: [values.length], type: GgmlType.F32, load: () => values });
  // A Hugging Face [out, in] matrix is GGUF ne [in, out], same bytes.
  const matrix = (name: string, values: Float32Array, outDim: number, inDim: number, type = MATRIX_TYPE[dtype]): GgufTensorSource => ({
    name,
    shape: [inDim, outDim],
    type,
    load: () => values,
  });
  const offset = config.padTokenId + 1;
  const positions = config.maxPositionEmbeddings - offset;
  const tensors: GgufTensorSource[] = [
    matrix("token_embd.weight", w.wordEmbeddings, config.vocabSize, d),
    matrix("token_types.weight", w.tokenTypeEmbeddings, config.typeVocabSize, d, GgmlType.F32),
    matrix("position_embd.weight", w.positionEmbeddings.slice(offset * d), positions, d, GgmlType.F32),
    vector("token_embd_norm.weight", w.embedNormWeight),
    vector("token_embd_norm.bias", w.embedNormBias),
  ];
  w.layers.forEach((l, i) => {
    const b = `blk.${i}.`;
    tensors.push(
      matrix(`${b}attn_q.weight`, l.qWeight, d, d),
      vector(`${b}attn_q.bias`, l.qBias),
      matrix(`${b}attn_k.weight`, l.kWeight, d, d),
      vector(`${b}attn_k.bias`, l.kBias),
      matrix(`${b}attn_v.weight`, l.vWeight, d, d),
      vector(`${b}attn_v.bias`, l.vBias),
      matrix(`${b}attn_output.weight`, l.attnOutWeight, d, d),
      vector(`${b}attn_output.bias`, l.attnOutBias),
      vector(`${b}attn_output_norm.weight`, l.attnNormWeight),
      vector(`${b}attn_output_norm.bias`, l.attnNormBias),
      matrix(`${b}ffn_up.weight`, l.upWeight, ff, d),
      vector(`${b}ffn_up.bias`, l.upBias),
      matrix(`${b}ffn_down.weight`, l.downWeight, d, ff),
      vector(`${b}ffn_down.bias`, l.downBias),
      vector(`${b}layer_output_norm.weight`, l.outNormWeight),
      vector(`${b}layer_output_norm.bias`, l.outNormBias),
    );
  });
  tensors.push(
    matrix("cls.weight", w.denseWeight, d, d),
    vector("cls.bias", w.denseBias),
    matrix("cls.output.weight", w.outProjWeight, 1, d),
    vector("cls.output.bias", w.outProjBias),
  );
  return tensors;
}

// ---------------------------------------------------------------------------
// The same model as a Hugging Face checkpoint folder (for the converter).

/**
 * Writes `dir` as BAAI/bge-reranker-v2-m3's repository lays out an XLMRobertaForSequenceClassification:
 * config.json, sentencepiece.bpe.model, tokenizer_config.json, special_tokens_map.json and
 * model.safetensors with the "roberta." prefix (f32 or bf16), plus the int64 position_ids buffer
 * older checkpoints carry.
 */
export async function writeHfXlmrCheckpoint(dir: string, model: TinyXlmr, options: { dtype?: "f32" | "bf16"; configOverrides?: Record<string, unknown>; omit?: string[] } = {}): Promise<void> {
  const { writeFile, copyFile } = await import("node:fs/promises");
  const { writeSafetensors } = await import("../../src/models/safetensors/index.js");
  await mkdir(dir, { recursive: true });
  const c = model.config;
  const config = {
    architectures: ["XLMRobertaForSequenceClassification"],
    model_type: "xlm-roberta",
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    intermediate_size: c.intermediateSize,
    max_position_embeddings: c.maxPositionEmbeddings,
    type_vocab_size: c.typeVocabSize,
    layer_norm_eps: c.layerNormEps,
    pad_token_id: c.padTokenId,
    bos_token_id: 0,
    eos_token_id: 2,
    hidden_act: "gelu",
    position_embedding_type: "absolute",
    id2label: { "0": "LABEL_0" },
    label2id: { LABEL_0: 0 },
    torch_dtype: options.dtype === "bf16" ? "bfloat16" : "float32",
    ...options.configOverrides,
  };
  await writeFile(join(dir, "config.json"), JSON.stringify(config, null, 2));
  await copyFile(model.spmModelPath, join(dir, "sentencepiece.bpe.model"));
  const specials = { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", sep_token: "</s>", pad_token: "<pad>", cls_token: "<s>", mask_token: { content: "<mask>", lstrip: true } };
  await writeFile(join(dir, "special_tokens_map.json"), JSON.stringify(specials));
  await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify({ ...specials, tokenizer_class: "XLMRobertaTokenizer", model_max_length: c.maxPositionEmbeddings - 2 }));
  const w = model.weights;
  const d = c.hiddenSize;
  const entries: Array<[string, number[], Float32Array]> = [
    ["roberta.embeddings.word_embeddings.weight", [c.vocabSize, d], w.wordEmbeddings],
    ["roberta.embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, d], w.positionEmbeddings],
    ["roberta.embeddings.token_type_embeddings.weight", [c.typeVocabSize, d], w.tokenTypeEmbeddings],
    ["roberta.embeddings.LayerNorm.weight", [d], w.embedNormWeight],
    ["roberta.embeddings.LayerNorm.bias", [d], w.embedNormBias],
  ];
  w.layers.forEach((l, i) => {
    const p = `roberta.encoder.layer.${i}.`;
    entries.push(
      [`${p}attention.self.query.weight`, [d, d], l.qWeight],
      [`${p}attention.self.query.bias`, [d], l.qBias],
      [`${p}attention.self.key.weight`, [d, d], l.kWeight],
      [`${p}attention.self.key.bias`, [d], l.kBias],
      [`${p}attention.self.value.weight`, [d, d], l.vWeight],
      [`${p}attention.self.value.bias`, [d], l.vBias],
      [`${p}attention.output.dense.weight`, [d, d], l.attnOutWeight],
      [`${p}attention.output.dense.bias`, [d], l.attnOutBias],
      [`${p}attention.output.LayerNorm.weight`, [d], l.attnNormWeight],
      [`${p}attention.output.LayerNorm.bias`, [d], l.attnNormBias],
      [`${p}intermediate.dense.weight`, [c.intermediateSize, d], l.upWeight],
      [`${p}intermediate.dense.bias`, [c.intermediateSize], l.upBias],
      [`${p}output.dense.weight`, [d, c.intermediateSize], l.downWeight],
      [`${p}output.dense.bias`, [d], l.downBias],
      [`${p}output.LayerNorm.weight`, [d], l.outNormWeight],
      [`${p}output.LayerNorm.bias`, [d], l.outNormBias],
    );
  });
  entries.push(
    ["classifier.dense.weight", [d, d], w.denseWeight],
    ["classifier.dense.bias", [d], w.denseBias],
    ["classifier.out_proj.weight", [1, d], w.outProjWeight],
    ["classifier.out_proj.bias", [1], w.outProjBias],
  );
  const positionIds = new Uint8Array(8 * c.maxPositionEmbeddings);
  const view = new DataView(positionIds.buffer);
  for (let i = 0; i < c.maxPositionEmbeddings; i++) view.setBigInt64(8 * i, BigInt(i), true);
  const omit = new Set(options.omit ?? []);
  await writeSafetensors(join(dir, "model.safetensors"), [
    ...entries
      .filter(([name]) => !omit.has(name))
      // The writer encodes BF16 from the float32 values (round to nearest even).
      .map(([name, shape, data]) => ({ name, shape, dtype: options.dtype === "bf16" ? "BF16" : "F32", data })),
    { name: "roberta.embeddings.position_ids", shape: [1, c.maxPositionEmbeddings], dtype: "I64", data: positionIds },
  ]);
}

/**
 * A random-weight XLM-RoBERTa-large cross-encoder GGUF in the shape of BAAI/bge-reranker-v2-m3
 * (hidden 1024, 24 layers, 16 heads, FFN 4096, vocabulary 250002, 8192 positions, one-logit
 * classifier), laid out as llama.cpp's converter writes XLMRobertaForSequenceClassification
 * (architecture "bert", tokenizer "t5"). Speed does not depend on the weights' values.
 *
 * The vocabulary is the test fixtures' spm-trained unigram model (XLM-R's normalization and id
 * layout) padded with unused pieces to 250002 entries, so the embedding table has the real size;
 * texts tokenize into more pieces than with XLM-R's real 250k-piece vocabulary, which the bench
 * reports as tokens per pair.
 *
 * Cached in bench/.cache/ (git-ignored, bench/random-gguf.ts); written one tensor at a time.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GgmlType, arr, bool, f32, str, u32, type GgufMetadata } from "../src/models/gguf/types.js";
import type { GgufTensorSource } from "../src/models/gguf/writer.js";
import { readSentencePieceModel } from "../src/models/sentencepiece/index.js";
import { ensureXlmrSpmModel, xlmrVocab } from "../test/support/tiny-xlmr.js";
import { describeRandomGguf, randomGguf, seededTensors, type RandomGguf } from "./random-gguf.js";

export interface XlmrBenchArchitecture {
  label: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  vocabSize: number;
  /** Hugging Face max_position_embeddings (context = this - 2). */
  maxPositionEmbeddings: number;
  dtype: "q8_0" | "f16";
}

/** BAAI/bge-reranker-v2-m3's shape (XLM-RoBERTa-large), matrices stored q8_0. */
export const XLMR_M3: XlmrBenchArchitecture = {
  label: "xlmr-m3-q8_0",
  hiddenSize: 1024,
  numLayers: 24,
  numHeads: 16,
  intermediateSize: 4096,
  vocabSize: 250002,
  maxPositionEmbeddings: 8194,
  dtype: "q8_0",
};

/** Bump when the generator's output changes for the same architecture. */
const GENERATOR_VERSION = 2;
const SEED = 0x3e5c0de;

export type XlmrBenchModel = RandomGguf<XlmrBenchArchitecture>;

export async function xlmrBenchModel(architecture: XlmrBenchArchitecture, say: (line: string) => void = () => undefined): Promise<XlmrBenchModel> {
  const spmPath = await ensureXlmrSpmModel();
  return randomGguf(
    {
      architecture,
      // `a`, not `architecture` as in bench/model.ts: the property name is hashed, and the cached m3
      // file (635 MB, minutes to generate) was named with this one.
      key: { GENERATOR_VERSION, SEED, a: architecture },
      vocabularySource: readFileSync(spmPath),
      contents: async () => ({ metadata: metadata(architecture, await readSentencePieceModel(spmPath)), tensors: tensors(architecture) }),
    },
    say,
  );
}

function metadata(a: XlmrBenchArchitecture, spm: Awaited<ReturnType<typeof readSentencePieceModel>>): GgufMetadata {
  const vocab = xlmrVocab(spm, a.vocabSize);
  return {
    "general.architecture": str("bert"),
    "general.name": str(`rerankd-bench-${a.label}`),
    "general.file_type": u32(a.dtype === "q8_0" ? 7 : 1),
    "bert.context_length": u32(a.maxPositionEmbeddings - 2),
    "bert.embedding_length": u32(a.hiddenSize),
    "bert.feed_forward_length": u32(a.intermediateSize),
    "bert.block_count": u32(a.numLayers),
    "bert.attention.head_count": u32(a.numHeads),
    "bert.attention.layer_norm_epsilon": f32(1e-5),
    "bert.attention.causal": bool(false),
    "bert.classifier.output_labels": arr("string", ["LABEL_0"]),
    "tokenizer.ggml.model": str("t5"),
    "tokenizer.ggml.pre": str("default"),
    "tokenizer.ggml.tokens": arr("string", vocab.tokens),
    "tokenizer.ggml.scores": arr("f32", vocab.scores),
    "tokenizer.ggml.token_type": arr("i32", vocab.types),
    "tokenizer.ggml.add_space_prefix": bool(true),
    "tokenizer.ggml.token_type_count": u32(1),
    "tokenizer.ggml.remove_extra_whitespaces": bool(true),
    "tokenizer.ggml.precompiled_charsmap": arr("u8", spm.normalizerSpec.precompiledCharsmap),
    "tokenizer.ggml.bos_token_id": u32(0),
    "tokenizer.ggml.eos_token_id": u32(2),
    "tokenizer.ggml.unknown_token_id": u32(3),
    "tokenizer.ggml.seperator_token_id": u32(2),
    "tokenizer.ggml.padding_token_id": u32(1),
    "tokenizer.ggml.cls_token_id": u32(0),
    "tokenizer.ggml.mask_token_id": u32(a.vocabSize - 1),
    "tokenizer.ggml.add_bos_token": bool(true),
    "tokenizer.ggml.add_eos_token": bool(true),
    // As llama.cpp's converter writes it for XLM-R (RobertaProcessing): llama-server then builds <s> q </s></s> d </s>.
    "tokenizer.ggml.add_sep_token": bool(true),
  };
}

function tensors(a: XlmrBenchArchitecture): GgufTensorSource[] {
  const type = a.dtype === "q8_0" ? GgmlType.Q8_0 : GgmlType.F16;
  const d = a.hiddenSize;
  const ff = a.intermediateSize;
  const { matrix, vector } = seededTensors(SEED, type);
  const list: GgufTensorSource[] = [
    matrix("token_embd.weight", a.vocabSize, d),
    matrix("token_types.weight", 1, d, GgmlType.F32),
    matrix("position_embd.weight", a.maxPositionEmbeddings - 2, d, GgmlType.F32),
    vector("token_embd_norm.weight", d, 1, 0.1),
    vector("token_embd_norm.bias", d, 0, 0.1),
  ];
  for (let i = 0; i < a.numLayers; i++) {
    const b = `blk.${i}.`;
    list.push(
      matrix(`${b}attn_q.weight`, d, d),
      vector(`${b}attn_q.bias`, d, 0, 0.1),
      matrix(`${b}attn_k.weight`, d, d),
      vector(`${b}attn_k.bias`, d, 0, 0.1),
      matrix(`${b}attn_v.weight`, d, d),
      vector(`${b}attn_v.bias`, d, 0, 0.1),
      matrix(`${b}attn_output.weight`, d, d),
      vector(`${b}attn_output.bias`, d, 0, 0.1),
      vector(`${b}attn_output_norm.weight`, d, 1, 0.1),
      vector(`${b}attn_output_norm.bias`, d, 0, 0.1),
      matrix(`${b}ffn_up.weight`, ff, d),
      vector(`${b}ffn_up.bias`, ff, 0, 0.1),
      matrix(`${b}ffn_down.weight`, d, ff),
      vector(`${b}ffn_down.bias`, d, 0, 0.1),
      vector(`${b}layer_output_norm.weight`, d, 1, 0.1),
      vector(`${b}layer_output_norm.bias`, d, 0, 0.1),
    );
  }
  list.push(matrix("cls.weight", d, d), vector("cls.bias", d, 0, 0.1), matrix("cls.output.weight", 1, d), vector("cls.output.bias", 1, 0, 0.1));
  return list;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(describeRandomGguf(await xlmrBenchModel(XLMR_M3, console.log)));
}

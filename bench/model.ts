/**
 * Random-weight Gemma GGUFs for the benchmark: the architecture of a real model (Gemma-2B by
 * default), weights from a fast seeded PRNG. Speed does not depend on the weights' values, so
 * this measures what the real model costs without downloading it.
 *
 * Written once and cached in bench/.cache/ (bench/random-gguf.ts) under a name keyed by the shape;
 * streaming (the writer asks for one tensor at a time), so the 2.5 GB model never sits in memory
 * whole.
 *
 * The vocabulary is the test fixtures' corpus-trained SentencePiece vocabulary (so "A:", "B:",
 * "Yes" and ordinary text tokenize as the reranker template expects) padded with unused pieces to
 * the architecture's vocabulary size: the embedding table and the LM head have the real size.
 */
import { fileURLToPath } from "node:url";
import { GgmlType, f32, str, u32 } from "../src/models/gguf/types.js";
import type { GgufTensorSource } from "../src/models/gguf/writer.js";
import { TokenType, buildSpmVocab, loadCorpus, spmTokenizerMetadata } from "../test/support/spm-vocab.js";
import { describeRandomGguf, randomGguf, seededTensors, type RandomGguf } from "./random-gguf.js";

export interface BenchArchitecture {
  /** Short label used in file names and tables. */
  label: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  dtype: "q8_0" | "f16";
}

/** google/gemma-2b (the base of BAAI/bge-reranker-v2-gemma), stored q8_0. */
export const GEMMA_2B: BenchArchitecture = {
  label: "gemma-2b-q8_0",
  hiddenSize: 2048,
  numLayers: 18,
  numHeads: 8,
  numKvHeads: 1,
  headDim: 256,
  intermediateSize: 16384,
  vocabSize: 256000,
  dtype: "q8_0",
};

/**
 * A small model where compute is cheap, so the server's own cost per pair shows. The vocabulary
 * stays Gemma's: the tokenizer and the one-row readout cost what they cost with the real model.
 */
export const SMALL: BenchArchitecture = {
  label: "gemma-small-h256-q8_0",
  hiddenSize: 256,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 1,
  headDim: 64,
  intermediateSize: 1024,
  vocabSize: 256000,
  dtype: "q8_0",
};

/** Bump when the generator's output changes for the same architecture. */
const GENERATOR_VERSION = 1;
const SEED = 0x5eed2b;

export type BenchModel = RandomGguf<BenchArchitecture>;

export async function benchModel(architecture: BenchArchitecture, say: (line: string) => void = () => undefined): Promise<BenchModel> {
  const corpus = loadCorpus();
  return randomGguf(
    {
      architecture,
      key: { GENERATOR_VERSION, SEED, architecture },
      vocabularySource: corpus,
      contents: async () => ({ metadata: metadata(architecture, corpus), tensors: tensors(architecture) }),
    },
    say,
  );
}

function metadata(a: BenchArchitecture, corpus: string) {
  const vocab = buildSpmVocab(corpus);
  if (vocab.tokens.length > a.vocabSize) throw new Error(`the fixture vocabulary (${vocab.tokens.length}) exceeds ${a.vocabSize}`);
  const tokens = [...vocab.tokens];
  const scores = [...vocab.scores];
  const types: number[] = [...vocab.types];
  const lowest = Math.min(...scores);
  for (let i = tokens.length; i < a.vocabSize; i++) {
    tokens.push(`<unused${i}>`);
    scores.push(lowest - 1);
    types.push(TokenType.UNUSED);
  }
  return {
    "general.architecture": str("gemma"),
    "general.name": str(`rerankd-bench-${a.label}`),
    "general.file_type": u32(a.dtype === "q8_0" ? 7 : 1),
    "gemma.context_length": u32(8192),
    "gemma.embedding_length": u32(a.hiddenSize),
    "gemma.block_count": u32(a.numLayers),
    "gemma.feed_forward_length": u32(a.intermediateSize),
    "gemma.attention.head_count": u32(a.numHeads),
    "gemma.attention.head_count_kv": u32(a.numKvHeads),
    "gemma.attention.key_length": u32(a.headDim),
    "gemma.attention.value_length": u32(a.headDim),
    "gemma.attention.layer_norm_rms_epsilon": f32(1e-6),
    ...spmTokenizerMetadata({ tokens, scores, types }),
  };
}

function tensors(a: BenchArchitecture): GgufTensorSource[] {
  const type = a.dtype === "q8_0" ? GgmlType.Q8_0 : GgmlType.F16;
  const { matrix } = seededTensors(SEED, type);
  const norm = (name: string): GgufTensorSource => ({ name, shape: [a.hiddenSize], type: GgmlType.F32, load: () => new Float32Array(a.hiddenSize).fill(1) });
  const d = a.hiddenSize;
  const list: GgufTensorSource[] = [matrix("token_embd.weight", a.vocabSize, d)];
  for (let i = 0; i < a.numLayers; i++) {
    list.push(
      norm(`blk.${i}.attn_norm.weight`),
      matrix(`blk.${i}.attn_q.weight`, a.numHeads * a.headDim, d),
      matrix(`blk.${i}.attn_k.weight`, a.numKvHeads * a.headDim, d),
      matrix(`blk.${i}.attn_v.weight`, a.numKvHeads * a.headDim, d),
      matrix(`blk.${i}.attn_output.weight`, d, a.numHeads * a.headDim),
      norm(`blk.${i}.ffn_norm.weight`),
      matrix(`blk.${i}.ffn_gate.weight`, a.intermediateSize, d),
      matrix(`blk.${i}.ffn_up.weight`, a.intermediateSize, d),
      matrix(`blk.${i}.ffn_down.weight`, d, a.intermediateSize),
    );
  }
  list.push(norm("output_norm.weight"));
  return list;
}

// Allow `tsx bench/model.ts` to just build (and report) both models.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const architecture of [SMALL, GEMMA_2B]) {
    console.log(describeRandomGguf(await benchModel(architecture, console.log)));
  }
}

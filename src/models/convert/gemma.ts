/**
 * Hugging Face `GemmaForCausalLM` → GGUF (`general.architecture = gemma`),
 * mirroring llama.cpp's convert_hf_to_gguf.py `GemmaModel`: the same metadata,
 * tensor names and type choices, norms stored as 1 + w, lm_head dropped
 * (llama.cpp's gemma graph always ties the output to token_embd).
 */
import { mkdir } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { SafetensorsCheckpoint, SafetensorsError } from "../safetensors/index.js";
import { GgmlType, f32, str, u32, type GgufMetadata } from "../gguf/types.js";
import { writeGguf, type GgufTensorSource } from "../gguf/writer.js";
import { ConvertError } from "./errors.js";
import type { JsonObject } from "./hf-files.js";
import { convertSentencePieceVocab, gemmaTokenizerMetadata } from "./vocab.js";
import type { ConvertOptions, ConvertResult, OutType } from "./types.js";

/** llama.cpp's LLAMA_FTYPE values for general.file_type. */
const FILE_TYPE: Readonly<Record<OutType, number>> = { f32: 0, f16: 1, q8_0: 7 };
const GGML_QUANT_VERSION = 2;
const Q8_0_BLOCK = 32;

export interface GemmaHparams {
  vocabSize: number | undefined;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  contextLength: number;
  rmsNormEps: number;
  ropeTheta: number | undefined;
}

function readHparams(config: JsonObject, configPath: string): GemmaHparams {
  const int = (key: string, fallback?: number): number => {
    const v = config[key] ?? fallback;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      throw new ConvertError(`${configPath}: "${key}" must be a positive integer, got ${JSON.stringify(config[key] ?? null)}`);
    }
    return v;
  };
  const num = (key: string, fallback: number | undefined): number | undefined => {
    const v = config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new ConvertError(`${configPath}: "${key}" must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const numHeads = int("num_attention_heads");
  return {
    vocabSize: config.vocab_size === undefined ? undefined : int("vocab_size"),
    hiddenSize: int("hidden_size"),
    intermediateSize: int("intermediate_size"),
    numLayers: int("num_hidden_layers"),
    numHeads,
    numKvHeads: int("num_key_value_heads", numHeads),
    // transformers' GemmaConfig defaults (llama.cpp reads the config through AutoConfig).
    headDim: int("head_dim", 256),
    contextLength: int("max_position_embeddings", 8192),
    rmsNormEps: num("rms_norm_eps", 1e-6) ?? 1e-6,
    ropeTheta: num("rope_theta", undefined),
  };
}

interface PlannedTensor {
  hfName: string;
  ggufName: string;
  /** PyTorch (row-major, outermost first) shape expected from config.json. */
  hfShape: number[];
  isNorm: boolean;
}

/** The tensors a Gemma checkpoint must hold, in output order, with HF → GGUF names (gguf-py's tensor map). */
function expectedTensors(h: GemmaHparams, vocabRows: number): PlannedTensor[] {
  const H = h.hiddenSize;
  const q = h.numHeads * h.headDim;
  const kv = h.numKvHeads * h.headDim;
  const F = h.intermediateSize;
  const list: PlannedTensor[] = [{ hfName: "model.embed_tokens.weight", ggufName: "token_embd.weight", hfShape: [vocabRows, H], isNorm: false }];
  for (let b = 0; b < h.numLayers; b++) {
    const hf = `model.layers.${b}.`;
    const gg = `blk.${b}.`;
    list.push(
      { hfName: `${hf}input_layernorm.weight`, ggufName: `${gg}attn_norm.weight`, hfShape: [H], isNorm: true },
      { hfName: `${hf}self_attn.q_proj.weight`, ggufName: `${gg}attn_q.weight`, hfShape: [q, H], isNorm: false },
      { hfName: `${hf}self_attn.k_proj.weight`, ggufName: `${gg}attn_k.weight`, hfShape: [kv, H], isNorm: false },
      { hfName: `${hf}self_attn.v_proj.weight`, ggufName: `${gg}attn_v.weight`, hfShape: [kv, H], isNorm: false },
      { hfName: `${hf}self_attn.o_proj.weight`, ggufName: `${gg}attn_output.weight`, hfShape: [H, q], isNorm: false },
      { hfName: `${hf}post_attention_layernorm.weight`, ggufName: `${gg}ffn_norm.weight`, hfShape: [H], isNorm: true },
      { hfName: `${hf}mlp.gate_proj.weight`, ggufName: `${gg}ffn_gate.weight`, hfShape: [F, H], isNorm: false },
      { hfName: `${hf}mlp.up_proj.weight`, ggufName: `${gg}ffn_up.weight`, hfShape: [F, H], isNorm: false },
      { hfName: `${hf}mlp.down_proj.weight`, ggufName: `${gg}ffn_down.weight`, hfShape: [H, F], isNorm: false },
    );
  }
  list.push({ hfName: "model.norm.weight", ggufName: "output_norm.weight", hfShape: [H], isNorm: true });
  return list;
}

/** Storage type as llama.cpp picks it: 1-D and norms F32; 2-D per outtype; q8_0 rows not a multiple of 32 fall back to F16. */
export function ggmlTypeFor(outtype: OutType, ggufShape: readonly number[], isNorm: boolean): GgmlType {
  if (ggufShape.length <= 1 || isNorm) return GgmlType.F32;
  switch (outtype) {
    case "f32":
      return GgmlType.F32;
    case "f16":
      return GgmlType.F16;
    case "q8_0":
      return ggufShape[0] % Q8_0_BLOCK === 0 ? GgmlType.Q8_0 : GgmlType.F16;
  }
}

const COMPARE_CHUNK_ELEMENTS = 1 << 22;

/** Whether lm_head holds exactly the embedding values (compared in chunks, never both whole tensors at once). */
async function sameValues(ck: SafetensorsCheckpoint, a: string, b: string): Promise<boolean> {
  const ia = ck.info(a);
  const ib = ck.info(b);
  if (ia.elementCount !== ib.elementCount) return false;
  if (ia.dtype === ib.dtype) {
    const chunk = COMPARE_CHUNK_ELEMENTS * 4;
    for (let off = 0; off < ia.byteLength; off += chunk) {
      const len = Math.min(chunk, ia.byteLength - off);
      const [ra, rb] = await Promise.all([ck.readRaw(a, off, len), ck.readRaw(b, off, len)]);
      if (Buffer.compare(ra, rb) !== 0) return false;
    }
    return true;
  }
  for (let first = 0; first < ia.elementCount; first += COMPARE_CHUNK_ELEMENTS) {
    const n = Math.min(COMPARE_CHUNK_ELEMENTS, ia.elementCount - first);
    const [va, vb] = await Promise.all([ck.readFloat32(a, first, n), ck.readFloat32(b, first, n)]);
    for (let i = 0; i < n; i++) if (va[i] !== vb[i]) return false;
  }
  return true;
}

const IGNORED_SUFFIXES = [".rotary_emb.inv_freq", ".attention.masked_bias", ".attention.bias"];

export async function convertGemma(dir: string, config: JsonObject, opts: ConvertOptions): Promise<ConvertResult> {
  const configPath = resolve(dir, "config.json");
  const h = readHparams(config, configPath);
  if (h.numHeads % h.numKvHeads !== 0) {
    throw new ConvertError(`${configPath}: num_attention_heads (${h.numHeads}) must be a multiple of num_key_value_heads (${h.numKvHeads})`);
  }

  const vocab = await convertSentencePieceVocab(dir, config, h.vocabSize);
  const warnings = [...vocab.warnings];
  const vocabRows = vocab.tokens.length;

  let ck: SafetensorsCheckpoint;
  try {
    ck = await SafetensorsCheckpoint.open(dir);
  } catch (err) {
    if (err instanceof SafetensorsError) throw new ConvertError(err.message, { cause: err });
    throw err;
  }
  try {
    const plan = expectedTensors(h, vocabRows);
    const expected = new Map(plan.map((p) => [p.hfName, p]));
    let lmHead: ConvertResult["lmHead"] = "absent";
    for (const name of ck.names()) {
      if (expected.has(name) || IGNORED_SUFFIXES.some((s) => name.endsWith(s))) continue;
      if (name === "lm_head.weight") {
        lmHead = "tied";
        continue;
      }
      throw new ConvertError(`cannot map tensor ${JSON.stringify(name)} (in ${ck.info(name).file}) to a GGUF gemma tensor`);
    }
    for (const p of plan) {
      if (!ck.has(p.hfName)) throw new ConvertError(`checkpoint ${dir} lacks tensor ${JSON.stringify(p.hfName)}`);
      const info = ck.info(p.hfName);
      if (info.shape.length !== p.hfShape.length || info.shape.some((d, i) => d !== p.hfShape[i])) {
        throw new ConvertError(
          `tensor ${JSON.stringify(p.hfName)} in ${info.file} has shape [${info.shape.join(", ")}], but config.json implies [${p.hfShape.join(", ")}]`,
        );
      }
      if (!["F32", "F16", "BF16", "F64"].includes(info.dtype)) {
        throw new ConvertError(`tensor ${JSON.stringify(p.hfName)} in ${info.file} has dtype ${info.dtype}; expected F32, F16 or BF16`);
      }
    }
    if (lmHead === "tied") {
      const emb = ck.info("model.embed_tokens.weight");
      const head = ck.info("lm_head.weight");
      const sameShape = head.shape.length === emb.shape.length && head.shape.every((d, i) => d === emb.shape[i]);
      if (!sameShape || !(await sameValues(ck, "lm_head.weight", "model.embed_tokens.weight"))) {
        throw new ConvertError(
          `${head.file} carries its own lm_head.weight, different from model.embed_tokens.weight; llama.cpp's gemma architecture always uses the embeddings as the output layer, so the converted model would score differently`,
        );
      }
    }

    const tensorTypes: Record<string, GgmlType> = {};
    const tensors: GgufTensorSource[] = plan.map((p) => {
      const shape = [...p.hfShape].reverse();
      const type = ggmlTypeFor(opts.outtype, shape, p.isNorm);
      if (opts.outtype === "q8_0" && type === GgmlType.F16) {
        warnings.push(`${p.ggufName}: row length ${shape[0]} is not a multiple of ${Q8_0_BLOCK}, stored as F16 instead of Q8_0`);
      }
      tensorTypes[p.ggufName] = type;
      return {
        name: p.ggufName,
        shape,
        type,
        load: async () => {
          let values: Float32Array;
          try {
            values = await ck.readFloat32(p.hfName);
          } catch (err) {
            if (err instanceof SafetensorsError) throw new ConvertError(err.message, { cause: err });
            throw err;
          }
          // HF Gemma's RMSNorm scales by (1 + w); llama.cpp's by w. Computed in float32, as HF does.
          if (p.isNorm) for (let i = 0; i < values.length; i++) values[i] = Math.fround(values[i] + 1);
          return values;
        },
      };
    });

    const metadata: GgufMetadata = {
      "general.architecture": str("gemma"),
      "general.type": str("model"),
      "general.name": str(opts.name ?? basename(resolve(dir))),
      "general.quantization_version": u32(GGML_QUANT_VERSION),
      "general.file_type": u32(FILE_TYPE[opts.outtype]),
      "gemma.context_length": u32(h.contextLength),
      "gemma.embedding_length": u32(h.hiddenSize),
      "gemma.block_count": u32(h.numLayers),
      "gemma.feed_forward_length": u32(h.intermediateSize),
      "gemma.attention.head_count": u32(h.numHeads),
      "gemma.attention.head_count_kv": u32(h.numKvHeads),
      "gemma.attention.layer_norm_rms_epsilon": f32(h.rmsNormEps),
      "gemma.attention.key_length": u32(h.headDim),
      "gemma.attention.value_length": u32(h.headDim),
      ...(h.ropeTheta !== undefined ? { "gemma.rope.freq_base": f32(h.ropeTheta) } : {}),
      ...gemmaTokenizerMetadata(vocab),
    };

    await mkdir(dirname(resolve(opts.out)), { recursive: true });
    let done = 0;
    await writeGguf(opts.out, {
      metadata,
      tensors,
      onProgress: (n, total) => {
        done = n;
        opts.onProgress?.({ done: n, total, tensor: tensors[n - 1]?.name });
      },
    });
    return {
      out: opts.out,
      architecture: "gemma",
      outtype: opts.outtype,
      tensorCount: done,
      tensorTypes,
      lmHead,
      vocabSize: vocabRows,
      warnings,
    };
  } finally {
    await ck.close();
  }
}

/**
 * The tensor half of a conversion, shared by the Gemma, XLM-RoBERTa and Qwen3 converters: every
 * checkpoint tensor is either mapped to a GGUF tensor or explicitly ignored (anything else is an
 * error, so a checkpoint of a different shape never converts silently), shapes are checked
 * against config.json before anything is written, and tensors are streamed one at a time.
 */
import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { SafetensorsCheckpoint, SafetensorsError } from "../safetensors/index.js";
import { GgmlType, str, u32, type GgufMetadata } from "../gguf/types.js";
import { writeGguf, type GgufTensorSource } from "../gguf/writer.js";
import { ConvertError } from "./errors.js";
import type { ConvertOptions, OutType } from "./types.js";

/** llama.cpp's LLAMA_FTYPE values for general.file_type. */
const FILE_TYPE: Readonly<Record<OutType, number>> = { f32: 0, f16: 1, q8_0: 7 };
const GGML_QUANT_VERSION = 2;
const Q8_0_BLOCK = 32;

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

/** The hyperparameters every Llama-style decoder converter (Gemma, Qwen3) reads from config.json. */
export interface DecoderHparams {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  contextLength: number;
  rmsNormEps: number;
}

/** The general.* keys every converted GGUF starts with, in gguf-py's order. */
export function generalMetadata(architecture: string, name: string, outtype: OutType): GgufMetadata {
  return {
    "general.architecture": str(architecture),
    "general.type": str("model"),
    "general.name": str(name),
    "general.quantization_version": u32(GGML_QUANT_VERSION),
    "general.file_type": u32(FILE_TYPE[outtype]),
  };
}

export interface PlannedTensor {
  /** The checkpoint's name (after any prefix was resolved). */
  hfName: string;
  ggufName: string;
  /** PyTorch (outermost first) shape config.json implies. */
  hfShape: number[];
  /** Always stored F32 (norms, biases, position and token-type embeddings), whatever the outtype. */
  f32?: boolean;
  /** Read only these leading-dimension rows [first, first + count) (position embeddings' offset). */
  rows?: { first: number; count: number };
  /** A transform of the values (after the rows are cut), e.g. Gemma's 1 + w norms. */
  transform?: (values: Float32Array) => Float32Array;
  /** The GGUF tensor's PyTorch-order shape when it differs from hfShape (after rows/transform). */
  outShape?: number[];
}

export async function openCheckpoint(dir: string): Promise<SafetensorsCheckpoint> {
  try {
    return await SafetensorsCheckpoint.open(dir);
  } catch (err) {
    if (err instanceof SafetensorsError) throw new ConvertError(err.message, { cause: err });
    throw err;
  }
}

/** Throws unless every checkpoint tensor is planned or ignored and every planned one is there with its shape and a float dtype. */
export function checkPlan(ck: SafetensorsCheckpoint, dir: string, plan: readonly PlannedTensor[], ignored: (name: string) => boolean, arch: string): void {
  const planned = new Set(plan.map((p) => p.hfName));
  for (const name of ck.names()) {
    if (planned.has(name) || ignored(name)) continue;
    throw new ConvertError(`cannot map tensor ${JSON.stringify(name)} (in ${ck.info(name).file}) to a GGUF ${arch} tensor`);
  }
  for (const p of plan) {
    if (!ck.has(p.hfName)) throw new ConvertError(`checkpoint ${dir} lacks tensor ${JSON.stringify(p.hfName)}`);
    const info = ck.info(p.hfName);
    if (info.shape.length !== p.hfShape.length || info.shape.some((d, i) => d !== p.hfShape[i])) {
      throw new ConvertError(`tensor ${JSON.stringify(p.hfName)} in ${info.file} has shape [${info.shape.join(", ")}], but config.json implies [${p.hfShape.join(", ")}]`);
    }
    if (!["F32", "F16", "BF16", "F64"].includes(info.dtype)) {
      throw new ConvertError(`tensor ${JSON.stringify(p.hfName)} in ${info.file} has dtype ${info.dtype}; expected F32, F16 or BF16`);
    }
  }
}

export interface WrittenTensors {
  tensorCount: number;
  tensorTypes: Record<string, GgmlType>;
}

/** Writes the GGUF: metadata, then each planned tensor read, transformed and encoded in turn. */
export async function writePlanned(
  ck: SafetensorsCheckpoint,
  plan: readonly PlannedTensor[],
  metadata: GgufMetadata,
  opts: ConvertOptions,
  warnings: string[],
): Promise<WrittenTensors> {
  const tensorTypes: Record<string, GgmlType> = {};
  const tensors: GgufTensorSource[] = plan.map((p) => {
    const shape = [...(p.outShape ?? p.hfShape)].reverse();
    const type = p.f32 ? GgmlType.F32 : ggmlTypeFor(opts.outtype, shape, p.ggufName.endsWith("_norm.weight"));
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
          if (p.rows) {
            const width = p.hfShape.slice(1).reduce((a, b) => a * b, 1);
            values = await ck.readFloat32(p.hfName, p.rows.first * width, p.rows.count * width);
          } else {
            values = await ck.readFloat32(p.hfName);
          }
        } catch (err) {
          if (err instanceof SafetensorsError) throw new ConvertError(err.message, { cause: err });
          throw err;
        }
        return p.transform ? p.transform(values) : values;
      },
    };
  });
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
  return { tensorCount: done, tensorTypes };
}

/** Reads config.json numbers with clear errors. */
export function configReader(config: Record<string, unknown>, configPath: string) {
  return {
    int(key: string, fallback?: number): number {
      const v = config[key] ?? fallback;
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
        throw new ConvertError(`${configPath}: "${key}" must be a positive integer, got ${JSON.stringify(config[key] ?? null)}`);
      }
      return v;
    },
    /** `fallback` may be undefined, for a key whose absence the converter handles itself. */
    num<F extends number | undefined>(key: string, fallback: F): number | F {
      const v = config[key];
      if (v === undefined || v === null) return fallback;
      if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new ConvertError(`${configPath}: "${key}" must be a positive number, got ${JSON.stringify(v)}`);
      return v;
    },
  };
}

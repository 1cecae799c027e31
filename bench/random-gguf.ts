/**
 * What the bench's random-weight GGUFs share (bench/model.ts: Gemma shapes; bench/xlmr-model.ts:
 * the XLM-RoBERTa shape): a file in bench/.cache/ (git-ignored) named by a hash of everything that
 * decides its bytes, so it is generated once; the streaming write, one tensor at a time, with a
 * progress line every 10 s (a full-size model takes minutes); and the seeded uniform weights.
 * Speed does not depend on the weights' values. Each model file keeps only its architecture:
 * metadata and tensor list.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GgmlType } from "../src/models/gguf/types.js";
import { writeGguf, type GgufTensorSource, type WriteGgufOptions } from "../src/models/gguf/writer.js";

const CACHE_DIR = fileURLToPath(new URL("./.cache", import.meta.url));

export interface RandomGguf<A> {
  path: string;
  architecture: A;
  sizeBytes: number;
  /** Seconds spent generating it in this run (0 when it came from the cache). */
  generatedSeconds: number;
}

export interface RandomGgufRecipe<A extends { label: string }> {
  /** Its label starts the file name. */
  architecture: A;
  /**
   * Hashed as JSON into the file name: the generator's version, seed and the architecture. Its
   * property names are hashed too, so renaming one renames the cached file and regenerates it.
   */
  key: Record<string, unknown>;
  /** What the vocabulary is built from (a corpus, a SentencePiece model file), hashed after `key`. */
  vocabularySource: string | Uint8Array;
  /** Called only when the file is not cached (building the vocabulary takes a while). */
  contents: () => Promise<Pick<WriteGgufOptions, "metadata" | "tensors">>;
}

export async function randomGguf<A extends { label: string }>(recipe: RandomGgufRecipe<A>, say: (line: string) => void): Promise<RandomGguf<A>> {
  const { architecture } = recipe;
  const hash = createHash("sha256").update(JSON.stringify(recipe.key)).update(recipe.vocabularySource).digest("hex").slice(0, 12);
  const path = `${CACHE_DIR}/${architecture.label}-${hash}.gguf`;
  if (existsSync(path)) return { path, architecture, sizeBytes: statSync(path).size, generatedSeconds: 0 };

  mkdirSync(CACHE_DIR, { recursive: true });
  const started = performance.now();
  say(`generating ${architecture.label} (random weights) at ${path} ...`);
  const { metadata, tensors } = await recipe.contents();
  let lastReport = 0;
  await writeGguf(path, {
    metadata,
    tensors,
    onProgress: (done, total) => {
      const now = performance.now();
      if (now - lastReport > 10_000 || done === total) {
        lastReport = now;
        say(`  ${done}/${total} tensors, ${((now - started) / 1000).toFixed(0)} s`);
      }
    },
  });
  return { path, architecture, sizeBytes: statSync(path).size, generatedSeconds: (performance.now() - started) / 1000 };
}

/** The line `tsx bench/model.ts` and `tsx bench/xlmr-model.ts` print for a model they built or found. */
export function describeRandomGguf(model: RandomGguf<unknown>): string {
  return `${model.path}: ${(model.sizeBytes / 2 ** 30).toFixed(2)} GiB${model.generatedSeconds ? `, generated in ${model.generatedSeconds.toFixed(0)} s` : " (cached)"}`;
}

export interface SeededTensors {
  /**
   * A weight of [outDim, inDim] (stored [inDim, outDim], GGUF order), uniform with std
   * 1/sqrt(inDim) like an initialised network, so activations stay finite.
   */
  matrix(name: string, outDim: number, inDim: number, storedAs?: GgmlType): GgufTensorSource;
  /** A vector uniform in center ± scale, stored f32. */
  vector(name: string, length: number, center: number, scale: number): GgufTensorSource;
}

/**
 * Each tensor takes the next seed of a fixed sequence when it is listed (its values are made only
 * when the writer loads it), so the weights depend on the seed and the order of the list alone.
 */
export function seededTensors(seed: number, storedAs: GgmlType): SeededTensors {
  let state = seed;
  const nextSeed = (): number => (state = (Math.imul(state, 0x9e3779b1) + 0x7f4a7c15) >>> 0);
  return {
    matrix(name, outDim, inDim, type = storedAs) {
      const tensorSeed = nextSeed();
      return { name, shape: [inDim, outDim], type, load: () => randomUniform(outDim * inDim, tensorSeed, Math.sqrt(3 / inDim)) };
    },
    vector(name, length, center, scale) {
      const tensorSeed = nextSeed();
      return { name, shape: [length], type: GgmlType.F32, load: () => randomUniform(length, tensorSeed, scale, center) };
    },
  };
}

/**
 * A 32-bit xorshift stepped per element: hundreds of millions of values per second, and they only
 * need to be bounded and not constant.
 */
function randomUniform(count: number, seed: number, scale: number, center = 0): Float32Array {
  const out = new Float32Array(count);
  let x = seed >>> 0 || 1;
  const k = (2 * scale) / 4294967296;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = center + (x >>> 0) * k - scale;
  }
  return out;
}

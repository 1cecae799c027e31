/**
 * Turns the model argument into a GGUF file on disk, whatever form the user gave it in:
 *   ./model.gguf                     a GGUF file, used as it is
 *   ./checkpoint/                    a Hugging Face checkpoint folder, converted (and cached)
 *   owner/name[@revision]            a Hub repository: downloaded into huggingface_hub's cache, converted
 *   hf:owner/name/file.gguf[@rev]    one GGUF file from the Hub
 * Converted files are cached beside the Hub cache ($HF_HOME/rerankd/gguf/...), keyed by source
 * revision, output type and converter version, and written under a temporary name first, so a
 * second start reuses a complete file and never trusts an interrupted one.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { getLlamaGpuTypes } from "node-llama-cpp";
import { ensureConvertedGguf, type ConvertProgress, type OutType } from "./convert/index.js";
import { createConsoleProgress, fetchModel, parseModelReference, resolveHubConfig, type HubEnv } from "./hub/index.js";
import type { Device } from "./llama-backend.js";

export class ModelNotFoundError extends Error {
  override name = "ModelNotFoundError";
}

export interface ResolvedModel {
  ggufPath: string;
  /** What /v1/models reports as `root`. */
  root: string;
}

export type DtypeChoice = OutType | "auto";

export interface ResolveOptions {
  env?: HubEnv;
  device?: Device;
  /** Output type when a checkpoint must be converted; "auto": q8_0 on CPU, f16 on a GPU. */
  dtype?: DtypeChoice;
  /** Progress and status lines for a person. */
  say?: (line: string) => void;
}

/** Where converted GGUF files are cached: RERANKD_CACHE, else beside the Hub cache. */
export function conversionCacheRoot(env: HubEnv): string {
  const explicit = env.RERANKD_CACHE?.trim();
  return explicit ? resolve(explicit) : dirname(resolveHubConfig(env).cacheDir);
}

/** q8_0 keeps a CPU's memory bandwidth (the bottleneck) low; a GPU runs f16 kernels best. */
export async function chooseDtype(choice: DtypeChoice, device: Device): Promise<OutType> {
  if (choice !== "auto") return choice;
  if (device === "cpu") return "q8_0";
  const gpus = await getLlamaGpuTypes("supported");
  return gpus.some((gpu) => gpu !== false) ? "f16" : "q8_0";
}

const isCheckpointDir = (path: string): boolean =>
  existsSync(path) && statSync(path).isDirectory() && existsSync(join(path, "config.json"));

export async function resolveModel(reference: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const env = options.env ?? process.env;
  const say = options.say ?? (() => undefined);
  const local = resolve(reference);

  if (reference.toLowerCase().endsWith(".gguf") && !reference.startsWith("hf:")) {
    if (!existsSync(local)) throw new ModelNotFoundError(`model file not found: ${reference}`);
    if (!statSync(local).isFile()) throw new ModelNotFoundError(`model path is not a file: ${reference}`);
    return { ggufPath: local, root: reference };
  }
  if (existsSync(local)) {
    if (!isCheckpointDir(local)) {
      throw new ModelNotFoundError(
        `${reference} is neither a .gguf file nor a Hugging Face checkpoint folder (no config.json in it)`,
      );
    }
    const outtype = await chooseDtype(options.dtype ?? "auto", options.device ?? "auto");
    const converted = await convertWithProgress(local, outtype, env, say);
    return { ggufPath: converted, root: reference };
  }

  // Not a local path: a Hub reference (parseModelReference says what is wrong with a bad one).
  const ref = parseModelReference(reference);
  const progress = createConsoleProgress();
  const fetched = await fetchModel(ref, { env, progress });
  if (fetched.warning) say(fetched.warning);
  if (ref.kind === "file") {
    if (!fetched.path.toLowerCase().endsWith(".gguf")) {
      throw new ModelNotFoundError(`hf:${ref.repo}/${ref.path} is not a .gguf file; serve the repository instead`);
    }
    return { ggufPath: fetched.path, root: reference };
  }
  const outtype = await chooseDtype(options.dtype ?? "auto", options.device ?? "auto");
  const converted = await convertWithProgress(fetched.path, outtype, env, say, { repoId: ref.repo, revision: fetched.commit });
  return { ggufPath: converted, root: reference };
}

async function convertWithProgress(
  dir: string,
  outtype: OutType,
  env: HubEnv,
  say: (line: string) => void,
  source: { repoId?: string; revision?: string } = {},
): Promise<string> {
  const bar = conversionProgress(say, outtype);
  const result = await ensureConvertedGguf({ dir, outtype, cacheRoot: conversionCacheRoot(env), onProgress: bar, ...source });
  say(result.reused ? `using converted model ${result.path}` : `converted to ${result.path}`);
  return result.path;
}

/** A one-line bar on a terminal; otherwise a line every 10% at most. */
export function conversionProgress(say: (line: string) => void, outtype: string): (p: ConvertProgress) => void {
  const tty = process.stderr.isTTY === true;
  let lastDecile = -1;
  return ({ done, total, tensor }) => {
    const fraction = total === 0 ? 1 : done / total;
    if (tty) {
      const width = 30;
      const filled = Math.round(fraction * width);
      process.stderr.write(`\rconverting to ${outtype} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total} ${tensor ?? ""}`.padEnd(100));
      if (done === total) process.stderr.write("\n");
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (decile > lastDecile) {
      lastDecile = decile;
      say(`converting to ${outtype}: ${done}/${total} tensors`);
    }
  };
}

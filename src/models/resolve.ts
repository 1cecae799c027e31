/**
 * Turns the model argument into a GGUF file on disk. Today: a local .gguf path. The Hugging Face
 * Hub and checkpoint-folder forms plug in here, so `serve` never needs to know which it was.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";

export class ModelNotFoundError extends Error {
  override name = "ModelNotFoundError";
}

export interface ResolvedModel {
  ggufPath: string;
  /** What /v1/models reports as `root`. */
  root: string;
}

export async function resolveModel(reference: string): Promise<ResolvedModel> {
  if (reference.toLowerCase().endsWith(".gguf")) {
    const file = path.resolve(reference);
    if (!existsSync(file)) throw new ModelNotFoundError(`model file not found: ${reference}`);
    if (!statSync(file).isFile()) throw new ModelNotFoundError(`model path is not a file: ${reference}`);
    return { ggufPath: file, root: reference };
  }
  throw new ModelNotFoundError(
    `cannot serve "${reference}": pass a .gguf file (Hugging Face Hub ids and checkpoint folders are not supported yet)`,
  );
}

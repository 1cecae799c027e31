/** Reading the small JSON files of a Hugging Face checkpoint folder. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ConvertError } from "./errors.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isJsonObject(v: Json | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses `dir/name` as a JSON object; undefined when the file does not exist (unless required). */
export async function readJsonObject(dir: string, name: string, required: true): Promise<JsonObject>;
export async function readJsonObject(dir: string, name: string, required?: false): Promise<JsonObject | undefined>;
export async function readJsonObject(dir: string, name: string, required = false): Promise<JsonObject | undefined> {
  const path = join(dir, name);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !required) return undefined;
    throw new ConvertError(code === "ENOENT" ? `missing ${name} in ${dir}` : `cannot read ${path}: ${code ?? String(err)}`, { cause: err });
  }
  let parsed: Json;
  try {
    parsed = JSON.parse(text) as Json;
  } catch (err) {
    throw new ConvertError(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isJsonObject(parsed)) throw new ConvertError(`${path} does not hold a JSON object`);
  return parsed;
}

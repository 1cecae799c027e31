/** The GGUF header facts a family looks at to decide whether it serves a model (before loading it). */
import { basename } from "node:path";
import type { ModelFacts } from "../families/types.js";
import { readGgufHeader } from "./gguf/reader.js";
import type { GgufValue } from "./gguf/types.js";

export async function readModelFacts(ggufPath: string): Promise<ModelFacts> {
  const header = await readGgufHeader(ggufPath);
  const value = (key: string): unknown => plain(header.metadata[key]);
  const architecture = value("general.architecture");
  if (typeof architecture !== "string") throw new Error(`${ggufPath} names no general.architecture`);
  const name = value("general.name");
  const tensors = new Set(header.tensors.map((t) => t.name));
  return {
    architecture,
    name: typeof name === "string" ? name : null,
    fileName: basename(ggufPath),
    metadata: value,
    hasTensor: (tensor) => tensors.has(tensor),
  };
}

/** A GGUF value as plain JS: numbers, bigints, strings, booleans, or arrays of them. */
function plain(value: GgufValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (value.type !== "array") return value.value;
  return Array.from(value.value as ArrayLike<unknown>, (item) =>
    typeof item === "object" && item !== null && "type" in item ? plain(item as GgufValue) : item,
  );
}

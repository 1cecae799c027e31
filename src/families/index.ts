/** The registry of model families: the only place that knows which families exist. */
import { readFileSync } from "node:fs";
import { flagLlmFamily, type FlagLlmTemplate } from "./flag-llm/family.js";
import { qwen3RerankerFamily, type Qwen3RerankerTemplate } from "./qwen3/family.js";
import type { FamilyDefinition, ModelFacts } from "./types.js";
import { xlmRobertaFamily } from "./xlm-roberta/family.js";

function template<T>(file: string): T {
  return JSON.parse(readFileSync(new URL(file, import.meta.url), "utf8")) as T;
}

export const families: readonly FamilyDefinition[] = [
  flagLlmFamily(template<FlagLlmTemplate>("./flag-llm/bge-reranker-v2-gemma.json")),
  xlmRobertaFamily,
  qwen3RerankerFamily(template<Qwen3RerankerTemplate>("./qwen3/qwen3-reranker.json")),
];

const supported = (): string => families.flatMap((f) => f.architectures.map((a) => `${a} (${f.name})`)).join(", ");

export function familyForArchitecture(architecture: string): FamilyDefinition {
  const family = families.find((f) => f.architectures.includes(architecture));
  if (!family) {
    throw new Error(`no reranker family serves the architecture "${architecture}"; supported: ${supported()}`);
  }
  return family;
}

/**
 * The family that serves a model file: `requested` (the --family flag) when given, else the first
 * family of the file's architecture that does not reject it. A family named explicitly must still
 * serve the architecture, but its content checks are skipped (the user vouches for the file).
 */
export function familyForModel(model: ModelFacts, requested?: string | null): FamilyDefinition {
  if (requested) {
    const family = families.find((f) => f.name === requested);
    if (!family) throw new Error(`unknown family "${requested}"; known: ${families.map((f) => f.name).join(", ")}`);
    if (!family.architectures.includes(model.architecture)) {
      throw new Error(`family ${family.name} serves ${family.architectures.join(", ")} models; ${model.fileName} is "${model.architecture}"`);
    }
    return family;
  }
  const candidates = families.filter((f) => f.architectures.includes(model.architecture));
  if (candidates.length === 0) {
    throw new Error(`no reranker family serves the architecture "${model.architecture}" of ${model.fileName}; supported: ${supported()}`);
  }
  const reasons: string[] = [];
  for (const family of candidates) {
    const reason = family.rejects?.(model) ?? null;
    if (reason === null) return family;
    reasons.push(`${family.name}: ${reason}`);
  }
  throw new Error(`${model.fileName} is a "${model.architecture}" model no family serves (${reasons.join("; ")})`);
}

/** The registry of model families: the only place that knows which families exist. */
import { readFileSync } from "node:fs";
import { flagLlmFamily, type FlagLlmTemplate } from "./flag-llm/family.js";
import type { FamilyDefinition } from "./types.js";

function template(file: string): FlagLlmTemplate {
  return JSON.parse(readFileSync(new URL(`./flag-llm/${file}`, import.meta.url), "utf8")) as FlagLlmTemplate;
}

export const families: readonly FamilyDefinition[] = [flagLlmFamily(template("bge-reranker-v2-gemma.json"))];

export function familyForArchitecture(architecture: string): FamilyDefinition {
  const family = families.find((f) => f.architectures.includes(architecture));
  if (!family) {
    const supported = families.flatMap((f) => f.architectures.map((a) => `${a} (${f.name})`)).join(", ");
    throw new Error(`no reranker family serves the architecture "${architecture}"; supported: ${supported}`);
  }
  return family;
}

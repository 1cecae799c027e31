/**
 * Just enough of a Dockerfile reader for the deployment tests: instructions with their line
 * continuations joined, grouped by stage, JSON-form arguments decoded.
 */
import { readFileSync } from "node:fs";

export interface Instruction {
  keyword: string;
  /** Everything after the keyword, continuations joined with a space. */
  args: string;
  line: number;
}

export interface Stage {
  from: string;
  name: string | null;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

export function readDockerfile(path: string): Dockerfile {
  const lines = readFileSync(path, "utf8").split("\n");
  const instructions: Instruction[] = [];
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let text = lines[i];
    if (/^\s*(#|$)/.test(text)) continue;
    while (text.endsWith("\\") && i + 1 < lines.length) {
      i++;
      if (/^\s*#/.test(lines[i])) continue;
      text = `${text.slice(0, -1)} ${lines[i].trim()}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(text);
    if (!match) throw new Error(`${path}:${start + 1}: cannot read "${text}"`);
    instructions.push({ keyword: match[1].toUpperCase(), args: match[2].replace(/\s+/g, " ").trim(), line: start + 1 });
  }
  const result: Dockerfile = { globalArgs: {}, stages: [] };
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const [from, as, name] = instruction.args.split(" ");
      result.stages.push({ from, name: as?.toUpperCase() === "AS" ? name : null, instructions: [] });
    } else if (result.stages.length === 0) {
      if (instruction.keyword !== "ARG") throw new Error(`${path}:${instruction.line}: ${instruction.keyword} before FROM`);
      const [name, value] = instruction.args.split("=");
      result.globalArgs[name] = value ?? "";
    } else {
      result.stages[result.stages.length - 1].instructions.push(instruction);
    }
  }
  return result;
}

/** `${NAME}` references replaced by the global ARG defaults. */
export function expandArgs(text: string, file: Dockerfile): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => file.globalArgs[a ?? b ?? ""] ?? whole);
}

/** A JSON-form (exec form) argument list: ["a", "b"]. */
export function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === "string")) throw new Error(`not an exec-form list: ${args}`);
  return parsed as string[];
}

export function all(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

export function one(stage: Stage, keyword: string): Instruction {
  const found = all(stage, keyword);
  if (found.length !== 1) throw new Error(`expected one ${keyword} in stage ${stage.name ?? stage.from}, found ${found.length}`);
  return found[0];
}

/** `KEY=value KEY2="value 2"` of an ENV instruction. */
export function envPairs(args: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const m of args.matchAll(/(\w+)=("([^"]*)"|\S+)/g)) pairs[m[1]] = m[3] ?? m[2];
  return pairs;
}

/** Whether a .dockerignore pattern list excludes a context path (or one of its parent folders). */
export function dockerIgnores(patterns: readonly string[], file: string): boolean {
  const toRegExp = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/^\/+|\/+$/g, "")
        .split(/(\*\*\/|\*|\?)/)
        .map((part) => (part === "**/" ? "(.*/)?" : part === "*" ? "[^/]*" : part === "?" ? "[^/]" : part.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
        .join("")}$`,
    );
  const parts = file.split("/");
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith("!");
    const pattern = negate ? raw.slice(1) : raw;
    if (prefixes.some((p) => toRegExp(pattern).test(p))) ignored = !negate;
  }
  return ignored;
}

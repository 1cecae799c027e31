/**
 * The seed API document's curl requests (../../../shared/seed/bge-reranker-v2-gemma-api.txt),
 * extracted verbatim and run with bash + curl against a server, for the seed tests of test/server
 * and test/families.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const SEED = fileURLToPath(new URL("../../../shared/seed/bge-reranker-v2-gemma-api.txt", import.meta.url));

/** The seed's curl commands, exactly as printed: from `curl -X POST` to the line closing the JSON body. */
export function seedCommands(): string[] {
  const lines = readFileSync(SEED, "utf8").split("\n");
  const commands: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith("curl -X POST")) continue;
    const start = i;
    while (!lines[i].startsWith("}'")) i++;
    commands.push(lines.slice(start, i + 1).join("\n"));
  }
  return commands;
}

/** The JSON body a seed command sends, with $BGE_RERANK_MODEL substituted as the shell would. */
export function seedBody(command: string, model: string): Record<string, unknown> {
  const body = command.slice(command.indexOf("-d '") + 4, command.lastIndexOf("'"));
  return JSON.parse(body.replace(`"'"$BGE_RERANK_MODEL"'"`, JSON.stringify(model))) as Record<string, unknown>;
}

/** Runs a seed command with the seed's environment variables pointing at `baseUrl`. */
export function runSeedCurl(command: string, env: { baseUrl: string; model: string; key: string }): { status: number; body: Record<string, unknown> } {
  const out = execFileSync("bash", ["-c", `${command} -s -w '\\n%{http_code}'`], {
    env: { ...process.env, HEXGRID_API_KEY: env.key, BGE_RERANK_BASE_URL: `${env.baseUrl}/v1`, BGE_RERANK_MODEL: env.model },
    encoding: "utf8",
  });
  const at = out.lastIndexOf("\n");
  return { status: Number(out.slice(at + 1)), body: JSON.parse(out.slice(0, at)) as Record<string, unknown> };
}

export const documentText = (d: unknown): string => (typeof d === "string" ? d : (d as { text: string }).text);

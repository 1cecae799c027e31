/**
 * Starts the real CLI (`src/cli/main.ts serve ...`) as a child process on a free port and waits
 * until the model is ready: what a user runs, not an in-process shortcut.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const repo = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));

export interface CliServer {
  url: string;
  process: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startCliServer(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliServer> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(repo, "src/cli/main.ts"), "serve", "--host", "127.0.0.1", "--port", "0", "--threads", "2", "--log-level", "warn", ...args],
    { cwd: repo, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not become ready:\n${output}`)), options.timeoutMs ?? 60_000);
    const check = () => {
      const listening = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (listening && /model ready/.test(output)) {
        clearTimeout(timer);
        resolve(listening[1]);
      }
    };
    child.stdout?.on("data", check);
    child.stderr?.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before it was ready:\n${output}`));
    });
  });

  return {
    url,
    process: child,
    output: () => output,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown; headers: Headers }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: response.status, json, headers: response.headers };
}

/**
 * The server's own answer to one /v1/rerank request, as document index → relevance_score: what
 * the client, example and load tests compare every later answer with.
 */
export async function rerankScores(
  baseUrl: string,
  body: { query: string; documents: string[]; model?: string },
  headers: Record<string, string> = {},
): Promise<Map<number, number>> {
  const { status, json } = await postJson(`${baseUrl}/v1/rerank`, body, headers);
  assert.equal(status, 200, JSON.stringify(json));
  return new Map((json as { results: Array<{ index: number; relevance_score: number }> }).results.map((r) => [r.index, r.relevance_score]));
}

/** The rerankd server as a user runs it: `rerankd serve` in its own process, on a free port. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const repo = path.resolve(fileURLToPath(new URL("..", import.meta.url)));

export interface BenchServer {
  url: string;
  pid: number;
  /** The "model ready" line: what the server says it runs with. */
  readyLine: string;
  output(): string;
  stop(): Promise<void>;
}

export async function startBenchServer(model: string, args: string[]): Promise<BenchServer> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", path.join(repo, "src/cli/main.ts"), "serve", model, "--host", "127.0.0.1", "--port", "0", "--log-level", "warn", ...args],
    { cwd: repo, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not become ready in 10 minutes:\n${output}`)), 600_000);
    const check = () => {
      const listening = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (listening && /model ready/.test(output)) {
        clearTimeout(timer);
        resolve(listening[1]);
      }
    };
    child.stdout?.on("data", check);
    child.stderr?.on("data", check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`server exited before it was ready:\n${output}`));
    });
  });
  return {
    url,
    pid: child.pid as number,
    readyLine: /model ready[^\n]*/.exec(output)?.[0] ?? "",
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Counters from /metrics (Prometheus text). */
export async function scrapeCounters(url: string): Promise<{ evaluatedTokens: number; promptTokens: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string): number => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(text);
    return match ? Number(match[1]) : NaN;
  };
  return { evaluatedTokens: value("rerankd_evaluated_tokens_total"), promptTokens: value("rerankd_prompt_tokens_total") };
}

export interface RerankCall {
  seconds: number;
  status: number;
  promptTokens: number;
  results: number;
}

/** One POST /v1/rerank, timed from the first byte sent to the last byte received. */
export async function rerank(url: string, query: string, documents: readonly string[]): Promise<RerankCall> {
  const started = performance.now();
  const response = await fetch(`${url}/v1/rerank`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, documents, return_documents: false }),
  });
  const body = (await response.json()) as { usage?: { prompt_tokens?: number }; results?: unknown[]; error?: { message?: string } };
  const seconds = (performance.now() - started) / 1000;
  if (response.status !== 200) throw new Error(`rerank answered ${response.status}: ${body.error?.message ?? JSON.stringify(body)}`);
  return { seconds, status: response.status, promptTokens: body.usage?.prompt_tokens ?? 0, results: body.results?.length ?? 0 };
}

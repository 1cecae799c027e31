/** The rerankd server as a user runs it: `rerankd serve` in its own process, on a free port. */
import { spawn, type ChildProcess } from "node:child_process";
import { Agent, request as httpRequest } from "node:http";
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
  /** performance.now() when the request was sent and its response fully received. */
  startedAt: number;
  endedAt: number;
  status: number;
  promptTokens: number;
  /** Raw scores (use_activation false) in document order. */
  scores: number[];
}

const agent = new Agent({ keepAlive: true });

/** POST with node:http: fetch (undici) gives up on a response that takes more than 300 s. */
function post(url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, text }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body);
  });
}

/** One POST /v1/rerank for raw scores, timed from the first byte sent to the last byte received. */
export async function rerank(url: string, query: string, documents: readonly string[]): Promise<RerankCall> {
  const started = performance.now();
  const response = await post(`${url}/v1/rerank`, JSON.stringify({ query, documents, return_documents: false, use_activation: false }));
  const body = JSON.parse(response.text) as {
    usage?: { prompt_tokens?: number };
    results?: Array<{ index: number; relevance_score: number }>;
    error?: { message?: string };
  };
  const endedAt = performance.now();
  const seconds = (endedAt - started) / 1000;
  if (response.status !== 200) throw new Error(`rerank answered ${response.status}: ${body.error?.message ?? JSON.stringify(body)}`);
  const scores = new Array<number>(documents.length).fill(NaN);
  for (const r of body.results ?? []) scores[r.index] = r.relevance_score;
  return { seconds, startedAt: started, endedAt, status: response.status, promptTokens: body.usage?.prompt_tokens ?? 0, scores };
}

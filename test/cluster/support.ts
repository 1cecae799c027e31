/**
 * The multi-replica tests' support: the reference cluster (src/cluster) on the tiny Gemma fixture,
 * and a bounded closed-loop load generator that sends rerank requests through nginx on loopback.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { uptime as osUptime, loadavg } from "node:os";
import { Cluster, findNginx, type ClusterOptions } from "../../src/cluster/supervisor.js";
import { buildTinyGemma } from "../support/tiny-gemma.js";

export const SERVED_NAME = "tiny-reranker";

/** Fails loudly when nginx is missing: these tests need Debian's nginx package (CI installs it). */
export function requireNginx(): string {
  try {
    return findNginx();
  } catch {
    throw new Error("the cluster tests need nginx: apt-get install -y nginx (Debian package `nginx`; .ci/run installs it)");
  }
}

export interface TestClusterOptions {
  replicas: number;
  /** Extra `rerankd serve` arguments for every replica. */
  serveArgs?: string[];
  /** The model for one replica (default: the tiny fixture for all). */
  modelFor?: (index: number, fixture: string) => string;
  replicaEnv?: ClusterOptions["replicaEnv"];
  failTimeoutSeconds?: number;
  retryOn?: ClusterOptions["retryOn"];
  /** Wait for this many replicas to be ready (default all). */
  waitForReady?: number;
}

/** Stops a cluster and removes its temp dir (read its access log before). */
export async function stopTestCluster(cluster: Cluster | undefined): Promise<void> {
  if (!cluster) return;
  await cluster.stop();
  cluster.removeWorkDir();
}

export async function startTestCluster(options: TestClusterOptions): Promise<Cluster> {
  requireNginx();
  const model = await buildTinyGemma();
  const cluster = await Cluster.start({
    replicas: options.replicas,
    serveArgs: ["--served-model-name", SERVED_NAME, "--threads", "1", "--log-level", "warn", ...(options.serveArgs ?? [])],
    replicaArgs: (i) => [options.modelFor?.(i, model.path) ?? model.path],
    replicaEnv: options.replicaEnv,
    maxBodyBytes: 16 * 1024 * 1024,
    requestTimeoutSeconds: 120,
    failTimeoutSeconds: options.failTimeoutSeconds,
    retryOn: options.retryOn,
    stopTimeoutMs: 30_000,
  });
  try {
    await cluster.waitReady(options.waitForReady ?? options.replicas, 180_000);
  } catch (error) {
    const outputs = cluster.replicas.map((r) => `--- replica ${r.index}:\n${r.output()}`).join("\n");
    await cluster.stop();
    cluster.removeWorkDir();
    throw new Error(`${(error as Error).message}\n${outputs}`, { cause: error });
  }
  return cluster;
}

const QUERIES = [
  "what is the capital of France?",
  "how many legs does a spider have?",
  "who wrote the theory of relativity?",
  "when does the river freeze in winter?",
];
const DOCUMENTS = [
  "Paris is the capital and the most populous city of France. It is located on the river Seine.",
  "The weather in Berlin is mild in spring, with temperatures between 10 and 20 degrees.",
  "Albert Einstein published the special theory of relativity in 1905 and the general theory in 1915.",
  "Spiders are arachnids with eight legs and two body segments.",
  "The quick brown fox jumps over the lazy dog.",
  "Rivers in northern countries often freeze over in the coldest months.",
];

/** The i-th request body of the load: a query against the six documents (small, like a real top-k). */
export function rerankBody(i: number): { model: string; query: string; documents: string[] } {
  return { model: SERVED_NAME, query: QUERIES[i % QUERIES.length], documents: DOCUMENTS };
}

export interface LoadResult {
  sent: number;
  ok: number;
  /** Non-200 answers and transport errors, with what they were. */
  failed: number;
  failures: string[];
  statuses: Record<string, number>;
  /** Answers per replica port (the last replica nginx tried, from X-Rerankd-Upstream). */
  byUpstream: Record<string, number>;
  /** Answers nginx got only after trying another replica first. */
  retried: number;
  seconds: number;
  requestsPerSecond: number;
  pairsPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

export interface LoadOptions {
  url: string;
  /** Requests in flight at once (closed loop: each worker sends its next request when the last ends). */
  concurrency: number;
  /** Stop sending after this long. */
  durationMs: number;
  /** And after this many requests, whichever comes first. */
  maxRequests?: number;
  /** Keep going while this returns true (checked before each request), within durationMs. */
  until?: () => boolean;
  /** Called with each answer (for tests that watch for a replica rejoining). */
  onAnswer?: (answer: { status: number; upstream: string; at: number }) => void;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Bounded load over loopback: never more than `concurrency` requests at once, never past durationMs. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const maxRequests = options.maxRequests ?? 100_000;
  const start = performance.now();
  const deadline = start + options.durationMs;
  const latencies: number[] = [];
  const result: LoadResult = {
    sent: 0,
    ok: 0,
    failed: 0,
    failures: [],
    statuses: {},
    byUpstream: {},
    retried: 0,
    seconds: 0,
    requestsPerSecond: 0,
    pairsPerSecond: 0,
    p50Ms: 0,
    p95Ms: 0,
    maxMs: 0,
  };
  const worker = async () => {
    while (result.sent < maxRequests && performance.now() < deadline && (options.until?.() ?? true)) {
      const i = result.sent++;
      const t0 = performance.now();
      try {
        const response = await fetch(`${options.url}/v1/rerank`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-request-id": `load-${i}` },
          body: JSON.stringify(rerankBody(i)),
          signal: AbortSignal.timeout(60_000),
        });
        const text = await response.text();
        latencies.push(performance.now() - t0);
        result.statuses[response.status] = (result.statuses[response.status] ?? 0) + 1;
        const upstream = response.headers.get("x-rerankd-upstream") ?? "";
        const tried = upstream.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
        const last = tried.at(-1) ?? "none";
        if (tried.length > 1) result.retried++;
        options.onAnswer?.({ status: response.status, upstream: last, at: performance.now() - start });
        if (response.status === 200) {
          const body = JSON.parse(text) as { results?: unknown[] };
          if (!Array.isArray(body.results) || body.results.length !== DOCUMENTS.length) {
            result.failed++;
            result.failures.push(`200 with a malformed body: ${text.slice(0, 200)}`);
            continue;
          }
          result.ok++;
          const port = last.split(":").at(-1) ?? last;
          result.byUpstream[port] = (result.byUpstream[port] ?? 0) + 1;
        } else {
          result.failed++;
          result.failures.push(`${response.status} via ${upstream || "nginx"}: ${text.slice(0, 200)}`);
        }
      } catch (error) {
        latencies.push(performance.now() - t0);
        result.failed++;
        result.statuses.transport = (result.statuses.transport ?? 0) + 1;
        result.failures.push(`transport: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  result.seconds = seconds;
  result.requestsPerSecond = result.ok / seconds;
  result.pairsPerSecond = (result.ok * DOCUMENTS.length) / seconds;
  result.p50Ms = percentile(latencies, 0.5);
  result.p95Ms = percentile(latencies, 0.95);
  result.maxMs = latencies.at(-1) ?? 0;
  result.sent = result.ok + result.failed;
  return result;
}

/** One line of figures for the test's diagnostics (what docs/RELIABILITY.md quotes). */
export function describeLoad(label: string, r: LoadResult): string {
  return (
    `${label}: ${r.ok}/${r.sent} ok in ${r.seconds.toFixed(1)} s = ${r.requestsPerSecond.toFixed(1)} req/s ` +
    `(${r.pairsPerSecond.toFixed(0)} pairs/s), p50 ${r.p50Ms.toFixed(0)} ms, p95 ${r.p95Ms.toFixed(0)} ms, ` +
    `max ${r.maxMs.toFixed(0)} ms, retried ${r.retried}, failed ${r.failed}, per replica port ${JSON.stringify(r.byUpstream)}`
  );
}

/** The machine's load, to print beside figures measured on a shared 2-core machine. */
export function machineLoad(): string {
  const [one, five] = loadavg();
  return `load average ${one.toFixed(2)} (1 min), ${five.toFixed(2)} (5 min); up ${Math.round(osUptime() / 60)} min`;
}

export interface AccessLogLine {
  status: number;
  upstreams: string[];
  upstreamStatuses: string[];
  requestId: string;
}

/** nginx's access log in the cluster's format (read after nginx stopped, so it is flushed). */
export function readAccessLog(cluster: Cluster): AccessLogLine[] {
  if (!existsSync(cluster.accessLogPath)) return [];
  return readFileSync(cluster.accessLogPath, "utf8")
    .split("\n")
    .filter((line) => line.includes("rid="))
    .map((line) => {
      const status = Number(/" (\d{3}) /.exec(line)?.[1] ?? 0);
      const split = (text: string | undefined) => (text ?? "").split(/[,:]\s+|,\s*/).filter((s) => s.length > 0 && s !== "-");
      const upstreams = (/upstream="([^"]*)"/.exec(line)?.[1] ?? "").split(",").map((s) => s.trim()).filter((s) => s && s !== "-");
      return {
        status,
        upstreams,
        upstreamStatuses: split(/upstream_status="([^"]*)"/.exec(line)?.[1]),
        requestId: /rid=(\S+)/.exec(line)?.[1] ?? "",
      };
    });
}

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** CPU seconds (user + system, all threads) a process has used so far; 0 once it is gone. */
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** The pids whose parent is `parent` (nginx's workers). */
function childPids(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

export interface CpuSnapshot {
  replicas: number;
  nginx: number;
  /** This test process: the load generator. */
  loadGenerator: number;
  at: number;
}

/** CPU seconds used so far by the replicas, nginx (master and workers) and the load generator. */
export function cpuSnapshot(cluster: Cluster): CpuSnapshot {
  const replicas = cluster.replicas.reduce((n, r) => n + (r.pid ? processCpuSeconds(r.pid) : 0), 0);
  const master = cluster.nginxPid;
  const nginx = master ? processCpuSeconds(master) + childPids(master).reduce((n, pid) => n + processCpuSeconds(pid), 0) : 0;
  const self = process.cpuUsage();
  return { replicas, nginx, loadGenerator: (self.user + self.system) / 1e6, at: performance.now() };
}

/** Cores each part kept busy between two snapshots (CPU seconds per wall second). */
export function coresBusy(from: CpuSnapshot, to: CpuSnapshot): { replicas: number; nginx: number; loadGenerator: number; total: number } {
  const wall = (to.at - from.at) / 1000;
  const replicas = (to.replicas - from.replicas) / wall;
  const nginx = (to.nginx - from.nginx) / wall;
  const loadGenerator = (to.loadGenerator - from.loadGenerator) / wall;
  return { replicas, nginx, loadGenerator, total: replicas + nginx + loadGenerator };
}

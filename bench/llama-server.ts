/**
 * rerankd against llama.cpp's own `llama-server --reranking`, on the same GGUF, machine and run:
 * a random-weight XLM-RoBERTa-large cross-encoder in BAAI/bge-reranker-v2-m3's shape
 * (bench/xlmr-model.ts), workloads W1 (1 query x 32 documents of ~128 tokens, one request after
 * another: pairs/s) and W3 (8 concurrent clients, each 1 query x 4 documents: latency p99), as
 * bench/options.ts sizes them.
 *
 * llama-server is built here from the llama.cpp source node-llama-cpp ships
 * (node_modules/node-llama-cpp/llama/gitRelease.bundle, the same commit as its prebuilt binaries)
 * into bench/llama-server/ (git-ignored; never committed), with GGML_NATIVE for this CPU. Its
 * flags are chosen by measuring: parallel slots and micro-batch sizes are swept on W1 and the
 * fastest is used for the comparison (all sweep results are reported).
 *
 * The machine is shared and its load moves by the minute, so the two servers run side by side and
 * are measured in alternating rounds (W1 on one then the other, then W3 likewise, the order
 * swapped each round); each measurement records the cores other processes used meanwhile, and
 * the ratios are the medians of the per-round ratios.
 *
 * Not a test: nothing asserts a timing. `npx tsx bench/llama-server.ts [--quick] [--threads N] [--rounds N]`
 * runs it alone; bench/run.ts calls compareWithLlamaServer().
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, hostname, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { getLlama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { startBenchServer } from "./server.js";
import { TextMaker } from "./texts.js";
import { XLMR_M3, xlmrBenchModel } from "./xlmr-model.js";

const BENCH_DIR = fileURLToPath(new URL("./", import.meta.url));
const REPO = fileURLToPath(new URL("../", import.meta.url));
const LLAMA_DIR = join(BENCH_DIR, "llama-server");
const BUNDLE = join(REPO, "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle");

export interface LlamaServerSizes {
  w1: { queryTokens: number; docTokens: number; documents: number; repeats: number };
  w3: { clients: number; documents: number; queryTokens: number; docTokens: number; rounds: number };
}

/** The throughput issue's W1 and W3 (bench/options.ts); the comparison repeats them in alternating rounds. */
export const FULL_SIZES: LlamaServerSizes = {
  w1: { queryTokens: 16, docTokens: 128, documents: 32, repeats: 1 },
  w3: { clients: 8, documents: 4, queryTokens: 16, docTokens: 128, rounds: 1 },
};
export const QUICK_SIZES: LlamaServerSizes = {
  w1: { queryTokens: 16, docTokens: 128, documents: 8, repeats: 1 },
  w3: { clients: 4, documents: 2, queryTokens: 16, docTokens: 64, rounds: 1 },
};

export interface Measurement {
  pairs: number;
  seconds: number;
  pairsPerSecond: number;
  tokensPerPair: number;
  /** Per-request latencies (W3). */
  p50: number;
  p99: number;
  /** Cores other processes used meanwhile (noise). */
  foreignCores: number;
}

export interface ServerRun {
  server: "rerankd" | "llama-server";
  flags: string;
  round: number;
  w1: Measurement;
  /** Absent in the flag sweep, which runs W1 only. */
  w3?: Measurement;
}

export interface LlamaServerComparison {
  model: string;
  llamaServerBinary: string;
  llamaCppCommit: string;
  threads: number;
  loadBefore: string;
  loadAfter: string;
  sweep: ServerRun[];
  rerankd: ServerRun[];
  llamaServer: ServerRun[];
  /** Median over rounds of rerankd's W1 pairs/s over llama-server's in the same round. */
  w1Ratio: number;
  /** Median over rounds of rerankd's W3 p99 over llama-server's in the same round (lower is better). */
  w3P99Ratio: number;
}

const say = (line: string): void => console.log(`[llama-server ${new Date().toISOString().slice(11, 19)}] ${line}`);

/** CPU time (seconds) the whole machine, and given processes, have used so far (Linux /proc). */
function cpuSeconds(pids: readonly number[]): { total: number; ours: number } {
  const hz = 100; // USER_HZ on Linux
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) / hz; // user nice system irq softirq steal
  let ours = 0;
  for (const pid of [process.pid, ...pids]) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ours += (Number(after[11]) + Number(after[12])) / hz; // utime stime
    } catch {
      // gone
    }
  }
  return { total, ours };
}

/** Cores other processes kept busy while `fn` ran (the measurement's noise). */
async function withForeignLoad<T>(pids: readonly number[], fn: () => Promise<T>): Promise<{ value: T; foreignCores: number }> {
  const before = cpuSeconds(pids);
  const started = performance.now();
  const value = await fn();
  const seconds = (performance.now() - started) / 1000;
  const after = cpuSeconds(pids);
  return { value, foreignCores: Math.max(0, (after.total - before.total - (after.ours - before.ours)) / seconds) };
}
const uptimeLoad = (): string => loadavg().map((l) => l.toFixed(2)).join(", ");

/** Builds llama-server from node-llama-cpp's llama.cpp source (once; later runs reuse it). */
export function ensureLlamaServer(threads: number): { binary: string; commit: string } {
  const src = join(LLAMA_DIR, "src");
  const build = join(LLAMA_DIR, "build");
  const binary = join(build, "bin", "llama-server");
  const stamp = join(LLAMA_DIR, "built-from");
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: node-llama-cpp ships llama.cpp's source there`);
  const commit = execFileSync("git", ["bundle", "list-heads", BUNDLE], { encoding: "utf8" }).trim().split(/\s+/)[0];
  if (existsSync(binary) && existsSync(stamp) && readFileSync(stamp, "utf8").trim() === commit) return { binary, commit };
  mkdirSync(LLAMA_DIR, { recursive: true });
  if (!existsSync(join(src, ".git"))) {
    say(`cloning llama.cpp ${commit.slice(0, 12)} from node-llama-cpp's bundle into ${src} ...`);
    execFileSync("git", ["clone", "--quiet", BUNDLE, src], { stdio: "inherit" });
  }
  execFileSync("git", ["-C", src, "checkout", "--quiet", commit], { stdio: "inherit" });
  const ninja = spawnSync("sh", ["-c", "command -v ninja"], { stdio: "ignore" }).status === 0;
  say(`building llama-server (Release, GGML_NATIVE) in ${build}: several minutes on 2 cores ...`);
  execFileSync(
    "cmake",
    [
      "-S", src, "-B", build, ...(ninja ? ["-G", "Ninja"] : []),
      "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
      "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  execFileSync("cmake", ["--build", build, "--target", "llama-server", "-j", String(Math.max(1, threads))], { stdio: ["ignore", "ignore", "inherit"] });
  if (!existsSync(binary)) throw new Error(`the build did not produce ${binary}`);
  writeFileSync(stamp, `${commit}\n`);
  return { binary, commit };
}

interface RunningServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startLlamaServer(binary: string, model: string, args: string[]): Promise<RunningServer> {
  const port = 18000 + Math.floor(Math.random() * 2000);
  const child: ChildProcess = spawn(binary, ["-m", model, "--host", "127.0.0.1", "--port", String(port), "--reranking", "--no-webui", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 300_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`llama-server exited:\n${output.slice(-3000)}`);
    try {
      if ((await fetch(`${url}/health`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`llama-server did not become healthy:\n${output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** One rerank call, timed; both servers take {query, documents} on /v1/rerank. */
async function rerankCall(url: string, query: string, documents: readonly string[]): Promise<{ seconds: number; promptTokens: number }> {
  const started = performance.now();
  const response = await fetch(`${url}/v1/rerank`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, documents, return_documents: false }),
  });
  const body = (await response.json()) as { usage?: { prompt_tokens?: number; total_tokens?: number }; results?: Array<{ relevance_score: number }> };
  const seconds = (performance.now() - started) / 1000;
  if (response.status !== 200 || body.results?.length !== documents.length) throw new Error(`rerank answered ${response.status}: ${JSON.stringify(body).slice(0, 300)}`);
  return { seconds, promptTokens: body.usage?.prompt_tokens ?? body.usage?.total_tokens ?? 0 };
}

interface Texts {
  w1: { queries: string[]; documents: string[] };
  w3: { queries: string[]; documents: string[] };
}

const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** W1: one query x the documents per request, requests one after another. */
async function runW1(url: string, pid: number, queries: readonly string[], documents: readonly string[]): Promise<Measurement> {
  const { value, foreignCores } = await withForeignLoad([pid], async () => {
    const started = performance.now();
    const latencies: number[] = [];
    let tokens = 0;
    for (const query of queries) {
      const call = await rerankCall(url, query, documents);
      latencies.push(call.seconds);
      tokens += call.promptTokens;
    }
    return { seconds: (performance.now() - started) / 1000, latencies, tokens };
  });
  const pairs = queries.length * documents.length;
  const sorted = [...value.latencies].sort((a, b) => a - b);
  return { pairs, seconds: value.seconds, pairsPerSecond: pairs / value.seconds, tokensPerPair: value.tokens / pairs, p50: percentile(sorted, 50), p99: percentile(sorted, 99), foreignCores };
}

/** W3: clients at once, each 1 query x its documents per request, `rounds` requests back to back. */
async function runW3(url: string, pid: number, size: LlamaServerSizes["w3"], texts: Texts["w3"]): Promise<Measurement> {
  const { value, foreignCores } = await withForeignLoad([pid], async () => {
    const started = performance.now();
    const latencies: number[] = [];
    let tokens = 0;
    await Promise.all(
      Array.from({ length: size.clients }, async (_, c) => {
        const documents = texts.documents.slice(c * size.documents, (c + 1) * size.documents);
        for (let r = 0; r < size.rounds; r++) {
          const call = await rerankCall(url, texts.queries[c * size.rounds + r], documents);
          latencies.push(call.seconds);
          tokens += call.promptTokens;
        }
      }),
    );
    return { seconds: (performance.now() - started) / 1000, latencies, tokens };
  });
  const pairs = size.clients * size.rounds * size.documents;
  const sorted = [...value.latencies].sort((a, b) => a - b);
  return { pairs, seconds: value.seconds, pairsPerSecond: pairs / value.seconds, tokensPerPair: value.tokens / pairs, p50: percentile(sorted, 50), p99: percentile(sorted, 99), foreignCores };
}

export interface CompareOptions {
  threads: number;
  quick: boolean;
  /** Alternating rounds (each: W1 and W3 on both servers). */
  rounds: number;
  /** rerankd flags beyond the model and threads. */
  rerankdArgs: string[];
}

export async function compareWithLlamaServer(options: CompareOptions): Promise<LlamaServerComparison> {
  const sizes = options.quick ? QUICK_SIZES : FULL_SIZES;
  const loadBefore = uptimeLoad();
  const { binary, commit } = ensureLlamaServer(options.threads);
  const model = await xlmrBenchModel(XLMR_M3, say);
  say(`model ${model.path} (${(model.sizeBytes / 2 ** 30).toFixed(2)} GiB), llama.cpp ${commit.slice(0, 12)}, threads ${options.threads}, load ${loadBefore}`);

  // The same texts for both servers, cut to length in the model's own tokens.
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const tokenizerModel = await llama.loadModel({ modelPath: model.path });
  const maker = new TextMaker((t) => tokenizerModel.tokenize(t, false) as number[], (ids) => tokenizerModel.detokenize(ids as Token[], false), 11);
  const texts: Texts = {
    w1: { queries: maker.texts(sizes.w1.repeats, sizes.w1.queryTokens), documents: maker.texts(sizes.w1.documents, sizes.w1.docTokens) },
    w3: { queries: maker.texts(sizes.w3.clients * sizes.w3.rounds, sizes.w3.queryTokens), documents: maker.texts(sizes.w3.clients * sizes.w3.documents, sizes.w3.docTokens) },
  };
  await tokenizerModel.dispose();
  await llama.dispose();

  const t = String(options.threads);
  const common = ["-t", t, "-tb", t];
  // Parallel slots and micro-batch: more documents per llama_decode, against attention over the
  // whole micro-batch (llama.cpp masks the other sequences out of a non-causal batch).
  const candidates: string[][] = options.quick
    ? [["-np", "8", "-c", "4096", "-b", "512", "-ub", "512"]]
    : [
        ["-np", "1", "-c", "512", "-b", "512", "-ub", "512"],
        ["-np", "4", "-c", "2048", "-b", "512", "-ub", "512"],
        ["-np", "8", "-c", "4096", "-b", "512", "-ub", "512"],
        ["-np", "8", "-c", "4096", "-b", "1024", "-ub", "1024"],
        ["-np", "8", "-c", "4096", "-b", "2048", "-ub", "2048"],
      ];
  const sweep: ServerRun[] = [];
  for (const flags of candidates) {
    const server = await startLlamaServer(binary, model.path, [...common, ...flags]);
    try {
      await rerankCall(server.url, "warm up", texts.w1.documents.slice(0, 2));
      const w1 = await runW1(server.url, server.pid, texts.w1.queries.slice(0, 1), texts.w1.documents);
      const run: ServerRun = { server: "llama-server", flags: [...common, ...flags].join(" "), round: 0, w1 };
      say(`sweep ${run.flags}: W1 ${w1.pairsPerSecond.toFixed(2)} pairs/s (others used ${w1.foreignCores.toFixed(2)} cores)`);
      sweep.push(run);
    } finally {
      await server.stop();
    }
  }
  // Best per unit of the machine actually available to it: pairs/s scaled by the cores left.
  const available = (m: Measurement) => Math.max(0.25, options.threads - m.foreignCores);
  const best = sweep.reduce((a, b) => (b.w1.pairsPerSecond / available(b.w1) > a.w1.pairsPerSecond / available(a.w1) ? b : a));
  say(`llama-server's best flags on W1: ${best.flags}`);

  const rerankdArgs = ["--threads", t, "--request-timeout", "0", ...options.rerankdArgs];
  const ours = await startBenchServer(model.path, rerankdArgs);
  const theirs = await startLlamaServer(binary, model.path, best.flags.split(" "));
  const rerankdRuns: ServerRun[] = [];
  const llamaRuns: ServerRun[] = [];
  try {
    for (const server of [ours.url, theirs.url]) await rerankCall(server, "warm up", texts.w1.documents.slice(0, 2));
    const servers = [
      { name: "rerankd" as const, url: ours.url, pid: ours.pid, flags: rerankdArgs.join(" "), runs: rerankdRuns },
      { name: "llama-server" as const, url: theirs.url, pid: theirs.pid, flags: best.flags, runs: llamaRuns },
    ];
    for (let round = 1; round <= options.rounds; round++) {
      const order = round % 2 === 1 ? servers : [...servers].reverse();
      const w1 = new Map<string, Measurement>();
      for (const s of order) w1.set(s.name, await runW1(s.url, s.pid, texts.w1.queries, texts.w1.documents));
      const w3 = new Map<string, Measurement>();
      for (const s of order) w3.set(s.name, await runW3(s.url, s.pid, sizes.w3, texts.w3));
      for (const s of servers) {
        const run: ServerRun = { server: s.name, flags: s.flags, round, w1: w1.get(s.name) as Measurement, w3: w3.get(s.name) as Measurement };
        s.runs.push(run);
        say(
          `round ${round} ${s.name}: W1 ${run.w1.pairsPerSecond.toFixed(2)} pairs/s (${run.w1.tokensPerPair.toFixed(0)} tokens/pair, others ${run.w1.foreignCores.toFixed(2)} cores), ` +
            `W3 p99 ${run.w3?.p99.toFixed(2)} s (others ${run.w3?.foreignCores.toFixed(2)} cores)`,
        );
      }
    }
  } finally {
    await ours.stop();
    await theirs.stop();
  }
  const w1Ratios = rerankdRuns.map((r, i) => r.w1.pairsPerSecond / llamaRuns[i].w1.pairsPerSecond);
  const w3Ratios = rerankdRuns.map((r, i) => (r.w3?.p99 ?? NaN) / (llamaRuns[i].w3?.p99 ?? NaN));
  return {
    model: model.path,
    llamaServerBinary: binary,
    llamaCppCommit: commit,
    threads: options.threads,
    loadBefore,
    loadAfter: uptimeLoad(),
    sweep,
    rerankd: rerankdRuns,
    llamaServer: llamaRuns,
    w1Ratio: median(w1Ratios),
    w3P99Ratio: median(w3Ratios),
  };
}

/** A Markdown section for the bench report. */
export function comparisonReport(c: LlamaServerComparison): string {
  const m = (x: Measurement | undefined, f: (m: Measurement) => number, digits = 2) => (x ? f(x).toFixed(digits) : "-");
  const row = (r: ServerRun, label: string) =>
    `| ${label} | \`${r.flags}\` | ${m(r.w1, (x) => x.pairsPerSecond)} | ${m(r.w1, (x) => x.tokensPerPair, 0)} | ${m(r.w1, (x) => x.foreignCores)} | ` +
    `${m(r.w3, (x) => x.p50)} | ${m(r.w3, (x) => x.p99)} | ${m(r.w3, (x) => x.pairsPerSecond)} | ${m(r.w3, (x) => x.foreignCores)} |`;
  return [
    "## rerankd vs llama-server --reranking (XLM-RoBERTa-large, bge-reranker-v2-m3 shape, random weights)",
    "",
    `Model ${c.model}; llama.cpp ${c.llamaCppCommit.slice(0, 12)} built with GGML_NATIVE; ${c.threads} threads; load ${c.loadBefore} before, ${c.loadAfter} after.`,
    "W1: 1 query x 32 documents of ~128 tokens per request, requests one after another; W3: 8 concurrent clients, each 1 query x 4 documents of ~128 tokens per request.",
    "\"others\": cores other processes on the machine used during that measurement (noise).",
    "",
    "| server | flags | W1 pairs/s | tokens/pair | W1 others | W3 p50 s | W3 p99 s | W3 pairs/s | W3 others |",
    "|---|---|---|---|---|---|---|---|---|",
    ...c.sweep.map((r) => row(r, "llama-server (flag sweep, W1 x 1 request)")),
    ...c.rerankd.flatMap((r, i) => [row(r, `rerankd, round ${r.round}`), row(c.llamaServer[i], `llama-server, round ${r.round}`)]),
    "",
    `W1: rerankd / llama-server pairs/s, median of the rounds' ratios = **${c.w1Ratio.toFixed(2)}x** (target >= 1.0). ` +
      `W3 p99: rerankd / llama-server, median of the rounds' ratios = **${c.w3P99Ratio.toFixed(2)}** (target < 1).`,
    "",
  ].join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: "boolean" },
      threads: { type: "string" },
      rounds: { type: "string" },
      "rerankd-arg": { type: "string", multiple: true },
      "no-write": { type: "boolean" },
    },
  });
  const result = await compareWithLlamaServer({
    threads: Number(values.threads ?? availableParallelism()),
    quick: values.quick ?? false,
    rounds: Number(values.rounds ?? (values.quick ? 1 : 3)),
    rerankdArgs: values["rerankd-arg"] ?? [],
  });
  const markdown = comparisonReport(result);
  console.log(`\n${markdown}`);
  if (!values["no-write"]) {
    const dir = fileURLToPath(new URL("./results/", import.meta.url));
    mkdirSync(dir, { recursive: true });
    const base = `${dir}${new Date().toISOString().slice(0, 10)}-${hostname()}-llama-server${values.quick ? "-quick" : ""}`;
    writeFileSync(`${base}.md`, markdown);
    writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
    say(`wrote ${base}.md and .json`);
  }
}

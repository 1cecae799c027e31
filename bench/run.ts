/**
 * `npm run bench`: rerankd's throughput and latency against llama.cpp's own ceiling, on this
 * machine, in one run. See bench/options.ts (or `npm run bench -- --help`) for what it runs.
 *
 * Not a test: nothing here asserts a timing. It prints a table and writes
 * bench/results/<date>-<host>.md and .json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Token } from "node-llama-cpp";
import { startServer } from "../src/cli/serve.js";
import { parseServeArgs } from "../src/cli/serve-options.js";
import type { PairTokens } from "../src/families/types.js";
import { loadModel, measureCeiling, type LoadedModel, measureEngineOnly, measureNaive, median, type CeilingResult, type NaiveResult } from "./direct.js";
import { InterleavedAlone } from "./interleave.js";
import { ForeignLoad, machineInfo, memoryOf, uptimeLoad, type MachineInfo } from "./machine.js";
import { compareWithLlamaServer, comparisonReport, type LlamaServerComparison } from "./llama-server.js";
import { GEMMA_2B, SMALL, benchModel, type BenchModel } from "./model.js";
import { BENCH_HELP, parseBenchArgs, type BenchOptions } from "./options.js";
import { rerank, scrapeCounters, startBenchServer, type BenchServer, type RerankCall } from "./server.js";
import { measureStepShapes, type StepShapeResult } from "./step-shapes.js";
import { TextMaker } from "./texts.js";

const say = (line: string): void => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

export interface WorkloadResult {
  name: string;
  description: string;
  requests: number;
  pairs: number;
  seconds: number;
  pairsPerSecond: number;
  /** Tokens the model evaluated (reused prefixes excluded), per second of wall time. */
  modelTokensPerSecond: number;
  /** Tokens of all pairs (what `usage` reports), per second. */
  promptTokensPerSecond: number;
  tokensPerPair: number;
  latency: { n: number; p50: number; p95: number; p99: number };
  /** The server's peak resident memory so far (bytes). */
  peakRss: number;
  /** Cores other processes kept busy meanwhile (noise). */
  foreignCores: number;
  /**
   * llama.cpp alone, sampled while the server was paused among this workload's seconds
   * (bench/interleave.ts): the samples' tokens/s, and the seconds paused (excluded above).
   */
  alone?: { tokensPerSecond: number; samples: number[]; pausedSeconds: number };
  extra?: Record<string, number>;
}

interface Results {
  date: string;
  machine: MachineInfo;
  loadBefore: string;
  loadAfter: string;
  options: { quick: boolean; threads: number; maxNumSeqs: number; maxNumBatchedTokens: number; checkTokens: number; aloneIntervalSeconds: number };
  model: { label: string; path: string; sizeBytes: number; generatedSeconds: number };
  serverReady: string;
  ceiling: CeilingResult[];
  /** Step shapes through rerankd's backend, relative to one 256-token lane in the same round (bench/step-shapes.ts). */
  steps: StepShapeResult[];
  naive: Record<string, NaiveResult>;
  workloads: WorkloadResult[];
  small: null | {
    model: string;
    engineSeconds: number[];
    httpSeconds: number[];
    /** Wall time outside llama.cpp's evaluation steps, over wall time (HTTP runs). */
    overheadFraction: number;
    /** The same from the difference of medians, HTTP vs engine alone (noisier). */
    engineOverheadFraction: number;
    schedulerGapFraction: number;
    overheadPerPairMs: number;
    pairs: number;
    foreignCores: number;
  };
  /** rerankd vs llama-server --reranking on an XLM-RoBERTa-large model (bench/llama-server.ts). */
  llamaServer: LlamaServerComparison | null;
  targets: Array<{ target: string; value: string; goal: string; met: boolean | null }>;
  note: string | null;
  totalSeconds: number;
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const latencyOf = (xs: readonly number[]) => ({ n: xs.length, p50: percentile(xs, 50), p95: percentile(xs, 95), p99: percentile(xs, 99) });

async function main(): Promise<void> {
  const parsed = parseBenchArgs(process.argv.slice(2));
  if (parsed === "help") {
    console.log(BENCH_HELP);
    return;
  }
  const options = parsed;
  const started = performance.now();
  const serveDefaults = parseServeArgs(["x.gguf"], {});
  if (serveDefaults === "help") throw new Error("unreachable");
  const seqs = options.maxNumSeqs ?? serveDefaults.maxNumSeqs;
  const budget = options.maxNumBatchedTokens ?? serveDefaults.maxNumBatchedTokens;
  const machine = machineInfo();
  const loadBefore = uptimeLoad();
  say(`${machine.cpu}, ${machine.cores} cores (${machine.availableParallelism} available), load ${loadBefore}`);
  say(`threads ${options.threads}, --max-num-seqs ${seqs}, --max-num-batched-tokens ${budget}${options.quick ? ", quick sizes" : ""}`);

  const big = await benchModel(GEMMA_2B, say);
  say(`model ${big.path} (${gib(big.sizeBytes)} GiB)`);
  const results: Results = {
    date: new Date().toISOString(),
    machine,
    loadBefore,
    loadAfter: "",
    options: {
      quick: options.quick,
      threads: options.threads,
      maxNumSeqs: seqs,
      maxNumBatchedTokens: budget,
      checkTokens: options.sizes.checkTokens,
      aloneIntervalSeconds: options.sizes.aloneIntervalSeconds,
    },
    model: { label: big.architecture.label, path: big.path, sizeBytes: big.sizeBytes, generatedSeconds: big.generatedSeconds },
    serverReady: "",
    ceiling: [],
    steps: [],
    naive: {},
    workloads: [],
    small: null,
    llamaServer: null,
    targets: [],
    note: options.note,
    totalSeconds: 0,
  };

  // Texts and pairs, with the model's own tokenizer; then llama.cpp alone.
  const loaded = await loadModel(big.path, options.threads);
  const maker = new TextMaker(
    (t) => loaded.model.tokenize(t, false) as number[],
    (ids) => loaded.model.detokenize(ids as Token[], false),
    7,
  );
  const s = options.sizes;
  const w1 = { queries: maker.texts(s.w1.repeats, s.w1.queryTokens), documents: maker.texts(s.w1.documents, s.w1.docTokens) };
  const w2 = { queries: maker.texts(s.w2.repeats, s.w2.queryTokens), documents: maker.texts(s.w2.documents, s.w2.docTokens) };
  const w3 = {
    queries: maker.texts(s.w3.clients * s.w3.rounds, s.w3.queryTokens),
    documents: maker.texts(s.w3.clients * s.w3.documents, s.w3.docTokens),
  };
  const w4 = {
    query: maker.text(s.w4.queryTokens),
    documents: maker.texts(s.w4.documents, s.w4.docTokens),
    smallQueries: maker.texts(200, s.w4.queryTokens),
    smallDocuments: maker.texts(s.w4.smallDocuments * 4, s.w4.docTokens),
  };
  const limits = { maxLength: 1024, maxTokensPerDoc: 0, truncation: "auto" as const };
  const pairsOf = (query: string, documents: readonly string[]): PairTokens[] => {
    const prepared = loaded.family.prepareQuery(query, limits);
    return documents.map((d) => loaded.family.buildPair(prepared, d, limits));
  };

  if (options.parts.has("ceiling")) {
    // The batch sizes bracket the server's --max-num-batched-tokens default (serve-options.ts).
    const runs = [...new Set([512, 256, 128, 64, budget])].map((batchTokens) => ({ batchTokens, threads: options.threads, repeats: s.ceilingRepeats }));
    // The thread count matters on a small machine: one thread, for comparison.
    if (options.threads > 1) runs.push({ batchTokens: 512, threads: 1, repeats: 1 });
    for (const run of runs) {
      say(`ceiling: one sequence of ${s.ceilingTokens} tokens in batches of ${run.batchTokens}, ${run.threads} threads ...`);
      const foreign = new ForeignLoad(() => []);
      const ceiling = await measureCeiling(loaded, { tokens: s.ceilingTokens, ...run });
      ceiling.foreignCores = foreign.stop();
      say(`  ${ceiling.tokensPerSecond.toFixed(1)} tokens/s (runs ${ceiling.seconds.map((x) => x.toFixed(2)).join(", ")} s; others used ${ceiling.foreignCores.toFixed(2)} cores)`);
      results.ceiling.push(ceiling);
    }
  }
  if (options.parts.has("steps")) {
    say(`step shapes: ${s.stepRounds} rounds through rerankd's backend, each shape against one 256-token lane in the same round ...`);
    results.steps = await measureStepShapes(big.path, { threads: options.threads, rounds: s.stepRounds });
    for (const x of results.steps) say(`  ${x.lanes.join("+")}: ${x.medianMs.toFixed(0)} ms, ${x.relative.toFixed(3)} of the reference's tokens/s`);
  }
  if (options.parts.has("naive")) {
    for (const [name, queries, documents] of [
      ["W1", w1.queries, w1.documents],
      ["W2", w2.queries, w2.documents],
    ] as const) {
      const pairs = pairsOf(queries[0], documents.slice(0, s.naivePairs));
      say(`naive: ${pairs.length} ${name} pairs evaluated alone, one after another ...`);
      const foreign = new ForeignLoad(() => []);
      const naive = await measureNaive(loaded, pairs, { threads: options.threads, batchTokens: 512 });
      naive.foreignCores = foreign.stop();
      say(`  ${naive.pairsPerSecond.toFixed(3)} pairs/s, ${naive.tokensPerSecond.toFixed(1)} tokens/s`);
      results.naive[name] = naive;
    }
  }

  const serverArgs = ["--threads", String(options.threads), "--max-num-seqs", String(seqs), "--max-num-batched-tokens", String(budget), "--request-timeout", "0"];
  const httpParts = (["w1", "w2", "w3", "w4"] as const).filter((p) => options.parts.has(p));
  if (httpParts.length > 0) {
    say(`starting rerankd on ${big.architecture.label} ...`);
    const server = await startBenchServer(big.path, serverArgs);
    results.serverReady = server.readyLine;
    say(`  ${server.readyLine}`);
    try {
      // One small request first: pages in the weights, as any first request after a start would.
      await rerank(server.url, "warm up", w1.documents.slice(0, 1));
      const target: BenchTarget = { server, loaded, alone: { tokens: s.checkTokens, intervalSeconds: s.aloneIntervalSeconds, threads: options.threads } };
      for (const [name, part, size, texts] of [
        ["W1", "w1", s.w1, w1],
        ["W2", "w2", s.w2, w2],
      ] as const) {
        if (!options.parts.has(part)) continue;
        const description = `1 query of ~${size.queryTokens} tokens x ${size.documents} documents of ~${size.docTokens}`;
        results.workloads.push(await sequential(target, name, description, texts.queries, texts.documents, results.naive[name]?.scores));
      }
      if (options.parts.has("w3")) results.workloads.push(await concurrentClients(target, s.w3, w3));
      if (options.parts.has("w4")) results.workloads.push(await longWithSmall(target, s.w4, w4));
    } finally {
      await server.stop();
    }
  }
  await loaded.dispose();

  if (options.parts.has("small")) results.small = await smallModelOverhead(options, seqs, budget, serverArgs);
  if (options.parts.has("llama-server")) {
    results.llamaServer = await compareWithLlamaServer({
      threads: options.threads,
      quick: options.quick,
      rounds: options.quick ? 1 : 3,
      rerankdArgs: options.maxNumSeqs === null ? [] : ["--max-num-seqs", String(options.maxNumSeqs)],
    });
  }

  results.loadAfter = uptimeLoad();
  results.totalSeconds = (performance.now() - started) / 1000;
  results.targets = targets(results, big);
  const markdown = report(results);
  console.log(`\n${markdown}`);
  if (options.write) {
    const dir = options.outDir ?? fileURLToPath(new URL("./results/", import.meta.url));
    mkdirSync(dir, { recursive: true });
    const base = `${dir}/${results.date.slice(0, 10)}-${machine.host}${options.quick ? "-quick" : ""}`;
    writeFileSync(`${base}.md`, markdown);
    writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
    say(`wrote ${base}.md and .json`);
  }
}

/** The server under test, and llama.cpp alone in this process to interleave with it. */
interface BenchTarget {
  server: BenchServer;
  loaded: LoadedModel;
  alone: { tokens: number; intervalSeconds: number; threads: number };
}

/**
 * Runs `fn` against the server and measures throughput from its /metrics counters, with llama.cpp
 * alone sampled among the workload's seconds while the server is paused (bench/interleave.ts).
 * `fn` gets each call's latency with the pauses it spanned taken out, and a sleep that counts only
 * the server's running time (for clients pausing between requests).
 */
async function measured(
  target: BenchTarget,
  name: string,
  description: string,
  fn: (latency: (call: RerankCall) => number, sleepRunning: (ms: number, end: Promise<unknown>) => Promise<void>) => Promise<{ latencies: number[]; pairs: number; requests: number; extra?: Record<string, number> }>,
): Promise<WorkloadResult> {
  const { server } = target;
  say(`${name}: ${description} ...`);
  const before = await scrapeCounters(server.url);
  const alone = await InterleavedAlone.start(target.loaded, server.pid, target.alone);
  const foreign = new ForeignLoad(() => [server.pid]);
  const started = performance.now();
  let ended: number;
  let run: Awaited<ReturnType<typeof fn>>;
  try {
    run = await fn(
      (call) => (call.endedAt - call.startedAt - alone.pausedWithin(call.startedAt, call.endedAt)) / 1000,
      (ms, end) => alone.sleepRunning(ms, end),
    );
    ended = performance.now();
  } finally {
    // Also on a failure: a server left to be paused again could not be stopped (SIGTERM waits for SIGCONT).
    await alone.stop();
  }
  const foreignCores = foreign.stop();
  const pausedSeconds = alone.pausedWithin(started, ended) / 1000;
  const seconds = (ended - started) / 1000 - pausedSeconds;
  const after = await scrapeCounters(server.url);
  const evaluated = after.evaluatedTokens - before.evaluatedTokens;
  const prompt = after.promptTokens - before.promptTokens;
  const sampled = { tokensPerSecond: alone.meanTokensPerSecond(), samples: alone.samples.map((x) => x.tokensPerSecond), pausedSeconds };
  const result: WorkloadResult = {
    name,
    description,
    requests: run.requests,
    pairs: run.pairs,
    seconds,
    pairsPerSecond: run.pairs / seconds,
    modelTokensPerSecond: evaluated / seconds,
    promptTokensPerSecond: prompt / seconds,
    tokensPerPair: prompt / Math.max(1, run.pairs),
    latency: latencyOf(run.latencies),
    peakRss: memoryOf(server.pid).peakRss,
    foreignCores,
    alone: sampled,
    ...(run.extra ? { extra: run.extra } : {}),
  };
  say(
    `  ${result.pairsPerSecond.toFixed(3)} pairs/s, ${result.modelTokensPerSecond.toFixed(1)} model tokens/s, ` +
      `p50 ${result.latency.p50.toFixed(2)} s, others used ${foreignCores.toFixed(2)} cores; llama.cpp alone among it ` +
      `${sampled.tokensPerSecond.toFixed(1)} tokens/s (${sampled.samples.map((x) => x.toFixed(1)).join(", ")})`,
  );
  return result;
}

/**
 * One request after another (W1, W2): each repeat has its own query, so nothing is reused across
 * repeats. The first request's raw scores are compared with the naive loop's, which evaluated the
 * first documents of the same query from scratch.
 */
function sequential(
  target: BenchTarget,
  name: string,
  description: string,
  queries: readonly string[],
  documents: readonly string[],
  fromScratch: readonly number[] | undefined,
) {
  return measured(target, name, description, async (latency) => {
    const latencies: number[] = [];
    let first: number[] | null = null;
    for (const query of queries) {
      const call = await rerank(target.server.url, query, documents);
      first ??= call.scores;
      latencies.push(latency(call));
    }
    const extra: Record<string, number> = {};
    if (fromScratch && first) {
      const scores = first;
      extra.maxScoreDifference = Math.max(...fromScratch.map((s, i) => Math.abs(s - scores[i])));
      extra.comparedPairs = fromScratch.length;
    }
    return { latencies, pairs: queries.length * documents.length, requests: queries.length, extra };
  });
}

/** W3: clients at once, each sending its rounds of 1 query x few documents back to back. */
function concurrentClients(target: BenchTarget, size: BenchOptions["sizes"]["w3"], texts: { queries: string[]; documents: string[] }) {
  const description = `${size.clients} concurrent clients, each ${size.rounds} x (1 query x ${size.documents} documents of ~${size.docTokens} tokens)`;
  return measured(target, "W3", description, async (latency) => {
    const latencies: number[] = [];
    await Promise.all(
      Array.from({ length: size.clients }, async (_, c) => {
        const documents = texts.documents.slice(c * size.documents, (c + 1) * size.documents);
        for (let r = 0; r < size.rounds; r++) latencies.push(latency(await rerank(target.server.url, texts.queries[c * size.rounds + r], documents)));
      }),
    );
    return { latencies, pairs: size.clients * size.rounds * size.documents, requests: size.clients * size.rounds };
  });
}

/**
 * W4: one long request; meanwhile small clients send 2-document requests (each a new query) with
 * pauses. The small requests' latency is compared with the same requests on the idle server.
 */
async function longWithSmall(
  target: BenchTarget,
  size: BenchOptions["sizes"]["w4"],
  texts: { query: string; documents: string[]; smallQueries: string[]; smallDocuments: string[] },
): Promise<WorkloadResult> {
  let nextQuery = 0;
  const smallRequest = () => {
    const query = texts.smallQueries[nextQuery++ % texts.smallQueries.length];
    const offset = (nextQuery % 4) * size.smallDocuments;
    return rerank(target.server.url, query, texts.smallDocuments.slice(offset, offset + size.smallDocuments));
  };
  say(`W4: idle latency of ${size.smallDocuments}-document requests (${size.idleSamples} samples after one untimed) ...`);
  // Untimed: a server's first requests (W4 alone with --only) ran 1.8x slower than the next ones.
  await smallRequest();
  const idle: number[] = [];
  for (let i = 0; i < size.idleSamples; i++) idle.push((await smallRequest()).seconds);
  const idleMedian = median(idle);
  say(`  idle: ${idle.map((x) => x.toFixed(2)).join(", ")} s`);
  const description = `1 request of ${size.documents} documents of ~${size.docTokens} tokens, ${size.smallClients} clients sending ${size.smallDocuments}-document requests meanwhile (each pausing 3-6 idle latencies between them)`;
  const result = await measured(target, "W4", description, async (latency, sleepRunning) => {
    let done = false;
    const smallLatencies: number[] = [];
    let smallPairs = 0;
    let wakeAll: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (wakeAll = resolve));
    const long = rerank(target.server.url, texts.query, texts.documents).finally(() => {
      done = true;
      wakeAll();
    });
    // A client's pause ends when the long request does (the measurement must not run on idle), and
    // counts the server's running time only: in wall time, requests sent while the server is paused
    // for a llama.cpp-alone sample would queue up together behind it.
    const pauseOrEnd = (ms: number) => sleepRunning(ms, finished);
    // Each client pauses 3 to 6 idle latencies between requests: together the small requests ask
    // for about a third of the machine, so the long request still runs (closer to saturation every
    // small request waits for the previous ones, which measures the queue, not the scheduler).
    const pause = () => idleMedian * 1000 * (3 + ((nextQuery * 397) % 1000) / 333);
    const clients = Array.from({ length: size.smallClients }, async (_, c) => {
      await pauseOrEnd(pause() * (c + 1) * 0.5);
      while (!done) {
        const call = await smallRequest();
        // Every one was sent while the long request ran: the loop stops once it is done.
        smallLatencies.push(latency(call));
        smallPairs += size.smallDocuments;
        if (!done) await pauseOrEnd(pause());
      }
    });
    const longCall = await long;
    await Promise.all(clients);
    return {
      latencies: smallLatencies,
      pairs: size.documents + smallPairs,
      requests: 1 + smallLatencies.length,
      extra: { longRequestSeconds: latency(longCall), idleSmallMedianSeconds: idleMedian, smallRequests: smallLatencies.length },
    };
  });
  return result;
}

/**
 * W1 on a small model, where compute is cheap, to expose the server's own cost per pair. The
 * server and its client run in this process, so the server's scheduler's counters give the
 * time llama.cpp spent in evaluation steps: everything else in the wall time (HTTP, JSON,
 * tokenization, building pairs, scheduling) is overhead. The engine alone (scheduler + backend,
 * no HTTP) is measured too, interleaved with the HTTP runs.
 */
async function smallModelOverhead(options: BenchOptions, seqs: number, budget: number, serverArgs: string[]): Promise<Results["small"]> {
  const small = await benchModel(SMALL, say);
  const s = options.sizes;
  const loaded = await loadModel(small.path, options.threads);
  const maker = new TextMaker(
    (t) => loaded.model.tokenize(t, false) as number[],
    (ids) => loaded.model.detokenize(ids as Token[], false),
    11,
  );
  const repeats = options.quick ? 2 : Math.max(3, s.overheadRepeats);
  const documents = maker.texts(s.w1.documents, s.w1.docTokens);
  const queries = maker.texts(2 * repeats + 2, s.w1.queryTokens);
  const limits = { maxLength: 1024, maxTokensPerDoc: 0, truncation: "auto" as const };
  const jobOf = (query: string) => {
    const prepared = loaded.family.prepareQuery(query, limits);
    return documents.map((d) => loaded.family.buildPair(prepared, d, limits));
  };
  const engineJobs = queries.slice(2, 2 + repeats).map(jobOf);
  const warmup = jobOf(queries[0]);
  await loaded.dispose();

  const served = parseServeArgs([small.path, "--host", "127.0.0.1", "--port", "0", "--log-level", "silent", ...serverArgs], {});
  if (served === "help") throw new Error("unreachable");
  const server = await startServer(served, () => undefined);
  const foreign = new ForeignLoad(() => []);
  const engineSeconds: number[] = [];
  const httpSeconds: number[] = [];
  let stepSeconds = 0;
  let gapSeconds = 0;
  let engineTime = 0;
  try {
    const model = await server.ready;
    await rerank(server.url, queries[1], documents.slice(0, 2));
    say(`small model (${SMALL.label}): W1 (${documents.length} documents), engine alone and over HTTP, ${repeats} times each, interleaved ...`);
    for (let r = 0; r < repeats; r++) {
      const engine = await measureEngineOnly(small.path, warmup, [engineJobs[r]], { threads: options.threads, lanes: seqs, batchTokens: budget, maxLength: 1024 });
      engineSeconds.push(engine.seconds[0]);
      gapSeconds += engine.counters.gapSeconds;
      engineTime += engine.seconds[0];
      // Untimed, like the engine's warm-up.
      await rerank(server.url, queries[1], documents);
      // The client runs in this process too: while this process has a child process, even an idle
      // one, llama.cpp runs the small model 1.3 to 2.6 times slower in it (measured; the Gemma-2B
      // shape is not affected), which a client in its own process would charge to HTTP. Its JSON
      // and HTTP work for one request now share the server's event loop, counted as overhead.
      const before = model.scheduler.counters();
      const call = await rerank(server.url, queries[2 + repeats + r], documents);
      const after = model.scheduler.counters();
      httpSeconds.push(call.seconds);
      stepSeconds += after.stepSeconds - before.stepSeconds;
    }
  } finally {
    await server.close();
  }
  const foreignCores = foreign.stop();
  const httpTotal = httpSeconds.reduce((a, b) => a + b, 0);
  say(`  engine alone ${engineSeconds.map((x) => x.toFixed(3)).join(", ")} s; over HTTP ${httpSeconds.map((x) => x.toFixed(3)).join(", ")} s`);
  return {
    model: `${SMALL.label} (${gib(small.sizeBytes)} GiB)`,
    engineSeconds,
    httpSeconds,
    overheadFraction: (httpTotal - stepSeconds) / httpTotal,
    engineOverheadFraction: (median(httpSeconds) - median(engineSeconds)) / median(httpSeconds),
    schedulerGapFraction: gapSeconds / engineTime,
    overheadPerPairMs: ((httpTotal - stepSeconds) / (repeats * documents.length)) * 1000,
    pairs: documents.length,
    foreignCores,
  };
}

function targets(results: Results, model: BenchModel): Results["targets"] {
  const out: Results["targets"] = [];
  const ceiling = results.ceiling.find((c) => c.batchTokens === 512 && c.threads === results.options.threads) ?? results.ceiling[0];
  const w = (name: string) => results.workloads.find((x) => x.name === name);
  for (const name of ["W1", "W2", "W3", "W4"]) {
    const x = w(name);
    if (!x) continue;
    if (x.alone && x.alone.samples.length > 0) {
      const ratio = x.modelTokensPerSecond / x.alone.tokensPerSecond;
      out.push({
        target: `${name} model tokens/s vs llama.cpp alone, interleaved`,
        value: `${ratio.toFixed(2)}x (${x.modelTokensPerSecond.toFixed(1)} vs ${x.alone.tokensPerSecond.toFixed(1)})`,
        goal: ">= 0.9x",
        met: ratio >= 0.9,
      });
    }
    if (ceiling && name !== "W4") {
      const ratio = x.modelTokensPerSecond / ceiling.tokensPerSecond;
      out.push({ target: `${name} model tokens/s vs the ceiling row`, value: `${ratio.toFixed(2)}x`, goal: "(info: a short burst, minutes apart)", met: null });
    }
  }
  const w2 = w("W2");
  const naive2 = results.naive.W2;
  if (w2 && naive2) {
    const ratio = w2.pairsPerSecond / naive2.pairsPerSecond;
    out.push({ target: "W2 pairs/s vs naive (prefix reuse)", value: `${ratio.toFixed(2)}x`, goal: ">= 1.4x", met: ratio >= 1.4 });
  }
  const w1 = w("W1");
  const naive1 = results.naive.W1;
  if (w1 && naive1) {
    const ratio = w1.pairsPerSecond / naive1.pairsPerSecond;
    out.push({ target: "W1 pairs/s vs naive", value: `${ratio.toFixed(2)}x`, goal: "(info)", met: null });
  }
  const w4 = w("W4");
  if (w4?.extra?.idleSmallMedianSeconds) {
    const ratio = w4.latency.p95 / w4.extra.idleSmallMedianSeconds;
    out.push({ target: "W4 small requests p95 vs idle", value: `${ratio.toFixed(2)}x (${w4.latency.p95.toFixed(2)} s vs ${w4.extra.idleSmallMedianSeconds.toFixed(2)} s)`, goal: "<= 3x", met: ratio <= 3 });
  }
  const peak = Math.max(0, ...results.workloads.map((x) => x.peakRss));
  if (peak > 0) {
    const limit = model.sizeBytes + 2 ** 30;
    out.push({ target: "peak RSS vs GGUF + 1 GiB", value: `${gib(peak)} GiB of ${gib(limit)} GiB`, goal: "<= GGUF + 1 GiB", met: peak <= limit });
  }
  if (results.small) {
    const f = results.small.overheadFraction;
    out.push({ target: "server overhead on a small model (W1)", value: `${(f * 100).toFixed(1)}% of wall time`, goal: "< 5%", met: f < 0.05 });
  }
  if (results.llamaServer) {
    const c = results.llamaServer;
    out.push({ target: "XLM-R W1 pairs/s vs llama-server --reranking", value: `${c.w1Ratio.toFixed(2)}x`, goal: ">= 1.0x", met: c.w1Ratio >= 1 });
    out.push({ target: "XLM-R W3 p99 vs llama-server --reranking", value: `${c.w3P99Ratio.toFixed(2)}x`, goal: "< 1x", met: c.w3P99Ratio < 1 });
  }
  return out;
}

const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(2);
const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : "-");

function report(r: Results): string {
  const lines: string[] = [];
  lines.push(`# rerankd bench, ${r.date.slice(0, 10)}, ${r.machine.host}${r.options.quick ? " (quick sizes)" : ""}`);
  lines.push("");
  lines.push(
    `Machine: ${r.machine.cpu}, ${r.machine.cores} cores (${r.machine.availableParallelism} available to the process), ${r.machine.memoryGiB} GiB; ` +
      `Node ${r.machine.node}, node-llama-cpp ${r.machine.nodeLlamaCpp}.`,
  );
  lines.push(`Load average (uptime) before: ${r.loadBefore}; after: ${r.loadAfter}. Run took ${(r.totalSeconds / 60).toFixed(1)} min.`);
  lines.push(
    `Model: ${r.model.label}, random weights, ${gib(r.model.sizeBytes)} GiB GGUF. rerankd: --threads ${r.options.threads} ` +
      `--max-num-seqs ${r.options.maxNumSeqs} --max-num-batched-tokens ${r.options.maxNumBatchedTokens}.`,
  );
  if (r.note) lines.push(`Note: ${r.note}`);
  lines.push("");
  lines.push("| measurement | pairs | wall s | pairs/s | model tok/s | prompt tok/s | tok/pair | p50 s | p95 s | p99 s | peak RSS GiB | others' cores | llama.cpp alone interleaved, tok/s |");
  lines.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const c of r.ceiling) {
    lines.push(
      `| ceiling: llama.cpp, 1 sequence of ${c.tokens} tokens, batch ${c.batchTokens}, ${c.threads} thread${c.threads > 1 ? "s" : ""} | - | ${f(median(c.seconds))} | - | ` +
        `${f(c.tokensPerSecond, 1)} | ${f(c.tokensPerSecond, 1)} | - | - | - | - | - | ${f(c.foreignCores ?? NaN)} | - |`,
    );
  }
  for (const [name, n] of Object.entries(r.naive)) {
    lines.push(
      `| naive: ${name} pairs alone, one after another | ${n.pairs} | ${f(n.seconds)} | ${f(n.pairsPerSecond, 3)} | ${f(n.tokensPerSecond, 1)} | ` +
        `${f(n.tokensPerSecond, 1)} | ${f(n.tokens / n.pairs, 0)} | - | - | - | - | ${f(n.foreignCores ?? NaN)} | - |`,
    );
  }
  for (const w of r.workloads) {
    lines.push(
      `| rerankd ${w.name}: ${w.description} | ${w.pairs} | ${f(w.seconds)} | ${f(w.pairsPerSecond, 3)} | ${f(w.modelTokensPerSecond, 1)} | ${f(w.promptTokensPerSecond, 1)} | ` +
        `${f(w.tokensPerPair, 0)} | ${f(w.latency.p50)} | ${f(w.latency.p95)} | ${f(w.latency.p99)} | ${gib(w.peakRss)} | ${f(w.foreignCores)} | ${f(w.alone?.tokensPerSecond ?? NaN, 1)} |`,
    );
  }
  lines.push("");
  lines.push("Latencies: W1/W2 per request (n = repeats); W3 per client request; W4 of the small requests sent during the long one.");
  lines.push("Model tokens are the tokens llama.cpp evaluated (reused query prefixes excluded); prompt tokens count every pair's tokens, as `usage` does.");
  lines.push("Others' cores: CPU time other processes on the machine used during the measurement, in cores (noise).");
  if (r.steps.length > 0) {
    lines.push("");
    lines.push(
      "Step shapes (bench/step-shapes.ts): one evaluation step through rerankd's backend, every lane reading its last token's logits; " +
        "tokens/s relative to one lane of 256 tokens measured in the same round (median over rounds; this VM drifts within minutes, a round by little).",
    );
    lines.push("");
    lines.push("| step: tokens per lane | tokens | median ms | tokens/s vs 1 x 256 | what it stands for |");
    lines.push("|---|---|---|---|---|");
    for (const x of r.steps) lines.push(`| ${x.lanes.join(" + ")} | ${x.tokens} | ${f(x.medianMs, 0)} | ${f(x.relative, 3)} | ${x.role} |`);
    lines.push("");
  }
  const sampled = r.workloads.filter((w) => w.alone && w.alone.samples.length > 0);
  if (sampled.length > 0) {
    lines.push(
      `llama.cpp alone, interleaved (bench/interleave.ts): every ${r.options.aloneIntervalSeconds} s of a workload the server was paused and llama.cpp ` +
        `evaluated ${r.options.checkTokens} tokens of one sequence in one batch in the bench's process; wall times, rates and latencies exclude the pauses. Samples, tok/s: ` +
        sampled.map((w) => `${w.name} ${(w.alone?.samples ?? []).map((x) => f(x, 1)).join(", ")}`).join("; ") +
        ". Their spread is this shared VM's drift, which both sides of each ratio saw alike.",
    );
  }
  for (const w of r.workloads) {
    if (w.extra?.maxScoreDifference !== undefined) {
      lines.push(
        `${w.name} scores (reused and copied query prefixes, batched) vs the same pairs evaluated alone from scratch: ` +
          `max |difference| ${w.extra.maxScoreDifference.toExponential(2)} over ${w.extra.comparedPairs} pairs (raw logits).`,
      );
    }
  }
  if (r.small) {
    lines.push("");
    lines.push(
      `Small model (${r.small.model}), W1 (${r.small.pairs} pairs per request): over HTTP ${r.small.httpSeconds.map((x) => f(x, 3)).join(", ")} s, ` +
        `engine alone ${r.small.engineSeconds.map((x) => f(x, 3)).join(", ")} s. Server overhead = wall time outside llama.cpp's evaluation steps: ` +
        `${f(r.small.overheadFraction * 100, 1)}% (${f(r.small.overheadPerPairMs, 2)} ms per pair); from the medians of HTTP vs engine alone ` +
        `${f(r.small.engineOverheadFraction * 100, 1)}%; the scheduler's own time between steps ${f(r.small.schedulerGapFraction * 100, 1)}% of the engine's. ` +
        `Others used ${f(r.small.foreignCores)} cores meanwhile.`,
    );
  }
  if (r.llamaServer) {
    lines.push("");
    lines.push(comparisonReport(r.llamaServer));
  }
  lines.push("");
  lines.push("| target | measured | goal | met |");
  lines.push("|---|---|---|---|");
  for (const t of r.targets) lines.push(`| ${t.target} | ${t.value} | ${t.goal} | ${t.met === null ? "-" : t.met ? "yes" : "no"} |`);
  lines.push("");
  lines.push(`Rerun: \`npm run bench\` (\`npm run bench -- --quick\` for a short run; \`npm run bench -- --help\` for options).`);
  return `${lines.join("\n")}\n`;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

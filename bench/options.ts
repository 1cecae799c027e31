/** `npm run bench -- [options]`: what to run and how big. Sizes default to the workloads. */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";

export interface WorkloadSizes {
  /** Tokens of one long sequence for the ceiling, and how many times it is measured. */
  ceilingTokens: number;
  ceilingRepeats: number;
  /** Rounds of the step-shape measurement (bench/step-shapes.ts). */
  stepRounds: number;
  /**
   * llama.cpp alone, interleaved with each HTTP workload (bench/interleave.ts): tokens of each
   * sample, and the workload's seconds between samples.
   */
  checkTokens: number;
  aloneIntervalSeconds: number;
  /** Pairs evaluated one by one for the naive baseline (a sample of the workload's pairs). */
  naivePairs: number;
  w1: { queryTokens: number; docTokens: number; documents: number; repeats: number };
  w2: { queryTokens: number; docTokens: number; documents: number; repeats: number };
  w3: { clients: number; documents: number; queryTokens: number; docTokens: number; rounds: number };
  w4: { documents: number; queryTokens: number; docTokens: number; smallDocuments: number; smallClients: number; idleSamples: number };
  /** W1 on the small model (server overhead): how many times each of engine-only and HTTP. */
  overheadRepeats: number;
}

export interface BenchOptions {
  quick: boolean;
  threads: number;
  maxNumSeqs: number | null;
  maxNumBatchedTokens: number | null;
  /** Which parts to run. */
  parts: Set<Part>;
  sizes: WorkloadSizes;
  /** Where results go (default bench/results). */
  outDir: string | null;
  /** Write the results files (off for exploratory runs). */
  write: boolean;
  /** Free-form note written into the results (e.g. what else ran on the machine). */
  note: string | null;
}

export const PARTS = ["ceiling", "steps", "naive", "w1", "w2", "w3", "w4", "small", "llama-server"] as const;
export type Part = (typeof PARTS)[number];

const FULL: WorkloadSizes = {
  ceilingTokens: 512,
  ceilingRepeats: 2,
  stepRounds: 8,
  checkTokens: 256,
  aloneIntervalSeconds: 20,
  naivePairs: 4,
  w1: { queryTokens: 16, docTokens: 128, documents: 32, repeats: 1 },
  w2: { queryTokens: 64, docTokens: 64, documents: 32, repeats: 1 },
  w3: { clients: 8, documents: 4, queryTokens: 16, docTokens: 128, rounds: 1 },
  w4: { documents: 256, queryTokens: 16, docTokens: 16, smallDocuments: 2, smallClients: 2, idleSamples: 5 },
  overheadRepeats: 3,
};

const QUICK: WorkloadSizes = {
  ceilingTokens: 256,
  ceilingRepeats: 1,
  stepRounds: 1,
  checkTokens: 64,
  aloneIntervalSeconds: 3,
  naivePairs: 2,
  w1: { queryTokens: 16, docTokens: 128, documents: 4, repeats: 1 },
  w2: { queryTokens: 64, docTokens: 64, documents: 4, repeats: 1 },
  w3: { clients: 3, documents: 2, queryTokens: 16, docTokens: 64, rounds: 1 },
  w4: { documents: 12, queryTokens: 16, docTokens: 16, smallDocuments: 2, smallClients: 1, idleSamples: 2 },
  overheadRepeats: 2,
};

export const BENCH_HELP = `npm run bench -- [options]

Measures llama.cpp's own ceiling, what an evaluation step costs by its shape (lanes x tokens), a
naive one-pair-at-a-time loop, and rerankd over HTTP (W1-W4)
on a random-weight Gemma-2B-shaped GGUF (generated once into bench/.cache/), each workload with
llama.cpp alone interleaved (the server paused every 20 s for one sample), then W1 on a small
model to expose the server's own overhead; last (part llama-server, bench/llama-server.ts), rerankd
against llama.cpp's own llama-server --reranking on a random-weight XLM-RoBERTa-large GGUF (the
bge-reranker-v2-m3 shape), W1 and W3 in alternating rounds; llama-server is built once from
node-llama-cpp's llama.cpp source into bench/llama-server/. Prints a table and writes
bench/results/<date>-<host>.md and .json.

Options:
  --quick                      small sizes (a few minutes): for trying the bench, not for results
  --only PARTS                 comma-separated subset of ${PARTS.join(",")}
  --threads N                  CPU threads (default: os.availableParallelism() = ${availableParallelism()})
  --max-num-seqs N             the server's --max-num-seqs (default: the server's default)
  --max-num-batched-tokens N   the server's --max-num-batched-tokens (default: the server's default)
  --w1-docs N, --w2-docs N, --w4-docs N, --w3-clients N   workload sizes
  --no-write                   print only; do not write bench/results
  --out DIR                    write results there instead of bench/results
  --note TEXT                  a note for the results file (e.g. other load on the machine)
`;

export function parseBenchArgs(argv: string[]): BenchOptions | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      only: { type: "string" },
      threads: { type: "string" },
      "max-num-seqs": { type: "string" },
      "max-num-batched-tokens": { type: "string" },
      "w1-docs": { type: "string" },
      "w2-docs": { type: "string" },
      "w3-clients": { type: "string" },
      "w4-docs": { type: "string" },
      "no-write": { type: "boolean" },
      out: { type: "string" },
      note: { type: "string" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help) return "help";
  const quick = values.quick ?? false;
  const sizes: WorkloadSizes = structuredClone(quick ? QUICK : FULL);
  const int = (name: string, text: string | undefined): number | null => {
    if (text === undefined) return null;
    if (!/^\d+$/.test(text) || Number(text) < 1) throw new Error(`--${name} must be a positive whole number`);
    return Number(text);
  };
  sizes.w1.documents = int("w1-docs", values["w1-docs"]) ?? sizes.w1.documents;
  sizes.w2.documents = int("w2-docs", values["w2-docs"]) ?? sizes.w2.documents;
  sizes.w3.clients = int("w3-clients", values["w3-clients"]) ?? sizes.w3.clients;
  sizes.w4.documents = int("w4-docs", values["w4-docs"]) ?? sizes.w4.documents;
  const parts = new Set<Part>(PARTS);
  if (values.only !== undefined) {
    parts.clear();
    for (const name of values.only.split(",").map((s) => s.trim())) {
      if (!(PARTS as readonly string[]).includes(name)) throw new Error(`--only: unknown part "${name}" (parts: ${PARTS.join(", ")})`);
      parts.add(name as Part);
    }
  }
  return {
    quick,
    threads: int("threads", values.threads) ?? availableParallelism(),
    maxNumSeqs: int("max-num-seqs", values["max-num-seqs"]),
    maxNumBatchedTokens: int("max-num-batched-tokens", values["max-num-batched-tokens"]),
    parts,
    sizes,
    outDir: values.out ?? null,
    write: !(values["no-write"] ?? false),
    note: values.note ?? null,
  };
}

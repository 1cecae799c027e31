/**
 * `rerankd serve` flags: one table drives parsing, validation and --help. Flag names follow
 * `vllm serve` where vLLM has one.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import type { TruncationMode } from "../families/types.js";
import type { Device } from "../models/llama-backend.js";
import type { DtypeChoice } from "../models/resolve.js";

export const DEFAULT_MODEL = "BAAI/bge-reranker-v2-gemma";

/**
 * Measured with `npm run bench` on a 2-core CPU, Gemma-2B shape (README, Performance). A step costs
 * what about 18 tokens more do, whatever its size (a pass over the weights; the step-shape table:
 * one lane of 128 tokens runs at 0.94 of one of 256, two lanes of 44 at 0.89, four of 45 at 0.96),
 * so bigger steps run closer to llama.cpp alone. 192 lets a long request's four lanes (see below)
 * take four 45-token document parts a step: W4 (256 such pairs with small requests arriving) ran at
 * 0.88-0.91x of llama.cpp alone in three runs against 0.81-0.83x at 128 (two parts a step), W1 and
 * W2 at 0.95x each in the full run (0.99x and 0.98x in a W1-W3 run) against 0.92x and 0.93x. The price is the small requests' wait for the step
 * in progress, up to ~3.5 s here instead of ~1.8 s: their W4 p95 went from 2.0-2.5x to 2.6-3.6x of
 * idle (goal 3x). 256 and six sequences added no throughput (0.89x) and took p95 to 4.7x. For
 * latency over throughput, lower it (128: two-document requests' p95 about 2x idle during a bulk
 * request). On a GPU, where a step's cost grows little with its size, raise it.
 */
const DEFAULT_MAX_NUM_BATCHED_TOKENS = 192;

/**
 * On a CPU more sequences add no throughput by themselves: a step costs its tokens and its passes
 * over the weights, not its sequences. One request may hold all lanes but one, so a new request
 * starts on the last at the next step; five let a long request run four equal chunks a step (four
 * 45-token document parts make a 180-token step one pass) and keep five queries' prefixes at hand.
 * Each costs its lane's KV cache: about 19 MiB on the Gemma-2B shape at max_length 1024. On a GPU,
 * raise it with the step budget.
 */
const DEFAULT_MAX_NUM_SEQS = 5;

export interface ServeOptions {
  model: string;
  /** The family to serve the model as (--family); null: chosen from the file. */
  family: string | null;
  host: string;
  port: number;
  servedModelName: string;
  /** null: the family's default (1024 for bge-reranker-v2-gemma). */
  maxLength: number | null;
  truncation: TruncationMode;
  apiKeys: string[];
  device: Device;
  /** Tensor type when a Hugging Face checkpoint is converted. */
  dtype: DtypeChoice;
  threads: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  maxBodyBytes: number;
  logLevel: string;
  /** Most documents in one rerank request. */
  maxDocuments: number;
  /** Most pairs in one score request. */
  maxPairs: number;
  /** Most characters (UTF-16 code units) in one query, document or prompt. */
  maxChars: number;
  /** A request's deadline in milliseconds; 0 = none. */
  requestTimeoutMs: number;
  /** Tokens queued for evaluation past which new scoring requests get 429. */
  maxQueuedTokens: number;
  /** How long in-flight requests may run after SIGTERM/SIGINT, in milliseconds. */
  shutdownTimeoutMs: number;
  /** Log the query and document text of each request (off: never logged). */
  logRequests: boolean;
  /** Origins allowed by CORS; empty = CORS off. */
  allowedOrigins: string[];
  /** Requests per second per API key (per client address without keys); 0 = no limit. */
  rateLimit: number;
  rateLimitBurst: number;
}

interface FlagSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  value?: string;
  help: string;
}

export const SERVE_FLAGS: Record<string, FlagSpec> = {
  model: { type: "string", value: "MODEL", help: `model to serve: a .gguf file (also as the positional argument); default ${DEFAULT_MODEL}` },
  family: { type: "string", value: "NAME", help: "score as this family (bge-reranker-v2-gemma, xlm-roberta-cross-encoder, qwen3-reranker); default: chosen from the file" },
  host: { type: "string", value: "HOST", help: "address to listen on (default 0.0.0.0)" },
  port: { type: "string", value: "PORT", help: "port to listen on (default 8000)" },
  "served-model-name": { type: "string", value: "NAME", help: "the model name clients send and see (default: the model argument)" },
  "max-length": { type: "string", value: "N", help: "max_length of a pair in tokens, FlagEmbedding's meaning (default: the family's, 1024 for Gemma)" },
  "max-model-len": { type: "string", value: "N", help: "alias of --max-length (vLLM's name)" },
  truncation: { type: "string", value: "auto|error", help: "auto (default): truncate long pairs as the model's reference does; error: refuse them with 400" },
  "api-key": { type: "string", multiple: true, value: "KEY", help: "require 'Authorization: Bearer KEY' (repeatable; also RERANKD_API_KEY=k1,k2)" },
  "api-key-file": { type: "string", value: "FILE", help: "read API keys from FILE, one per line" },
  device: { type: "string", value: "cpu|auto", help: "auto (default): a GPU (CUDA/Vulkan/Metal) when one is found, else CPU; cpu: never a GPU" },
  dtype: { type: "string", value: "auto|f32|f16|q8_0", help: "weights' type when converting a Hugging Face checkpoint (default auto: q8_0 on CPU, f16 on a GPU)" },
  threads: { type: "string", value: "N", help: "CPU threads for evaluation (default: the cores this process may use, os.availableParallelism()); fewer on a host shared with other busy processes" },
  "max-num-seqs": { type: "string", value: "N", help: `pairs evaluated side by side, one llama.cpp sequence each (default ${DEFAULT_MAX_NUM_SEQS})` },
  "max-num-batched-tokens": { type: "string", value: "N", help: `most tokens in one evaluation step across sequences (default ${DEFAULT_MAX_NUM_BATCHED_TOKENS}; raise it on a GPU)` },
  "max-body-bytes": { type: "string", value: "N", help: "largest request body accepted, in bytes (default 16777216); larger gets 413" },
  "max-documents": { type: "string", value: "N", help: "most documents in one rerank request (default 1000); more gets 400" },
  "max-pairs": { type: "string", value: "N", help: "most pairs in one score request (default 1000); more gets 400" },
  "max-chars": { type: "string", value: "N", help: "most characters in one query, document or prompt (default 100000); more gets 400" },
  "request-timeout": { type: "string", value: "SECONDS", help: "a request still running after this gets 504 and its queued work is dropped (default 120; 0 = none)" },
  "max-queued-tokens": { type: "string", value: "N", help: "tokens waiting for the model past which new requests get 429 with Retry-After (default 131072)" },
  "shutdown-timeout": { type: "string", value: "SECONDS", help: "on SIGTERM/SIGINT, how long in-flight requests may finish before exit (default 30)" },
  "rate-limit": { type: "string", value: "N", help: "requests per second per API key (per client address without keys); more gets 429 (default 0 = off)" },
  "rate-limit-burst": { type: "string", value: "N", help: "requests a key may send at once before --rate-limit applies (default: 2 x --rate-limit)" },
  "allowed-origins": { type: "string", multiple: true, value: "ORIGINS", help: "allow browser calls (CORS) from these origins, comma-separated or repeated; * = any (default: CORS off)" },
  "log-level": { type: "string", value: "LEVEL", help: "fatal|error|warn|info|debug (default info); logs are JSON lines on stderr" },
  "log-requests": { type: "boolean", help: "also log each request's query and documents (default: never logged)" },
  help: { type: "boolean", help: "show this help" },
};

export class UsageError extends Error {
  override name = "UsageError";
}

export function serveHelp(): string {
  const rows = Object.entries(SERVE_FLAGS).map(([name, spec]) => {
    const left = `  --${name}${spec.value ? ` ${spec.value}` : ""}`;
    return `${left.padEnd(36)} ${spec.help}`;
  });
  return [
    "Usage: rerankd serve [MODEL] [options]",
    "",
    "Serves a reranker with vLLM's /v1/rerank and /v1/score API.",
    "",
    "Options:",
    ...rows,
  ].join("\n");
}

function integer(name: string, text: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--${name} must be a whole number, not "${text}"`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`--${name} must be between ${min} and ${max}, not ${value}`);
  return value;
}

/** A non-negative decimal number of seconds, as milliseconds. */
function seconds(name: string, text: string | undefined, fallback: number, max = 86_400): number {
  if (text === undefined) return fallback * 1000;
  if (!/^\d+(\.\d+)?$/.test(text.trim())) throw new UsageError(`--${name} must be a number of seconds, not "${text}"`);
  const value = Number(text);
  if (value > max) throw new UsageError(`--${name} must be at most ${max} seconds, not ${value}`);
  return Math.round(value * 1000);
}

/** Origins from repeated or comma-separated values: "*" or full origins like https://example.com. */
export function parseOrigins(values: string[] | undefined): string[] {
  const origins = (values ?? []).flatMap((v) => v.split(",")).map((o) => o.trim()).filter((o) => o.length > 0);
  for (const origin of origins) {
    if (origin !== "*" && !/^https?:\/\/[^/\s]+\/?$/.test(origin)) {
      throw new UsageError(`--allowed-origins takes origins like https://search.example.com (scheme and host, no path), or *; not "${origin}"`);
    }
  }
  return [...new Set(origins.map((o) => o.replace(/\/$/, "").toLowerCase()))];
}

function oneOf<T extends string>(name: string, text: string | undefined, allowed: readonly T[], fallback: T): T {
  if (text === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, not "${text}"`);
  return text as T;
}

/** API keys from every source, trimmed, empties dropped. */
export function collectApiKeys(flags: string[] | undefined, file: string | undefined, env: string | undefined): string[] {
  const keys = [...(flags ?? [])];
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new UsageError(`cannot read --api-key-file: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
    }
    keys.push(...text.split(/\r?\n/));
  }
  if (env) keys.push(...env.split(","));
  return [...new Set(keys.map((k) => k.trim()).filter((k) => k.length > 0))];
}

export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv): ServeOptions | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.entries(SERVE_FLAGS).map(([k, v]) => [k, { type: v.type, multiple: v.multiple ?? false }])),
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (v.help) return "help";
  const str = (k: string) => v[k] as string | undefined;
  if (parsed.positionals.length > 1) throw new UsageError(`one model at a time; got ${parsed.positionals.join(", ")}`);
  if (parsed.positionals.length === 1 && str("model") !== undefined) throw new UsageError("give the model either as the argument or with --model, not both");
  const model = parsed.positionals[0] ?? str("model") ?? DEFAULT_MODEL;
  if (str("max-length") !== undefined && str("max-model-len") !== undefined) throw new UsageError("--max-length and --max-model-len are the same flag; give one");
  const maxLengthText = str("max-length") ?? str("max-model-len");
  const rateLimit = integer("rate-limit", str("rate-limit"), 0, 0);
  return {
    model,
    family: str("family") ?? null,
    host: str("host") ?? "0.0.0.0",
    port: integer("port", str("port"), 8000, 0, 65535),
    servedModelName: str("served-model-name") ?? model,
    maxLength: maxLengthText === undefined ? null : integer(str("max-length") !== undefined ? "max-length" : "max-model-len", maxLengthText, 0, 8, 1 << 20),
    truncation: oneOf("truncation", str("truncation"), ["auto", "error"] as const, "auto"),
    apiKeys: collectApiKeys(v["api-key"] as string[] | undefined, str("api-key-file"), env.RERANKD_API_KEY),
    device: oneOf("device", str("device"), ["cpu", "auto"] as const, "auto"),
    dtype: oneOf("dtype", str("dtype"), ["auto", "f32", "f16", "q8_0"] as const, "auto"),
    threads: integer("threads", str("threads"), availableParallelism(), 1, 1024),
    maxNumSeqs: integer("max-num-seqs", str("max-num-seqs"), DEFAULT_MAX_NUM_SEQS, 1, 256),
    maxNumBatchedTokens: integer("max-num-batched-tokens", str("max-num-batched-tokens"), DEFAULT_MAX_NUM_BATCHED_TOKENS, 16, 1 << 20),
    maxBodyBytes: integer("max-body-bytes", str("max-body-bytes"), 16 * 1024 * 1024, 1024),
    logLevel: oneOf("log-level", str("log-level"), ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const, "info"),
    maxDocuments: integer("max-documents", str("max-documents"), 1000, 1),
    maxPairs: integer("max-pairs", str("max-pairs"), 1000, 1),
    maxChars: integer("max-chars", str("max-chars"), 100_000, 1),
    requestTimeoutMs: seconds("request-timeout", str("request-timeout"), 120),
    maxQueuedTokens: integer("max-queued-tokens", str("max-queued-tokens"), 131_072, 1),
    shutdownTimeoutMs: seconds("shutdown-timeout", str("shutdown-timeout"), 30),
    logRequests: v["log-requests"] === true,
    allowedOrigins: parseOrigins(v["allowed-origins"] as string[] | undefined),
    rateLimit,
    rateLimitBurst: integer("rate-limit-burst", str("rate-limit-burst"), Math.max(1, Math.ceil(rateLimit * 2)), 1),
  };
}

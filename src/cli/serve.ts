/**
 * `rerankd serve`: listen first (so /health answers 503 while loading), then load the model,
 * bind its family, start the scheduler, and flip to ready.
 */
import type { FastifyInstance } from "fastify";
import { Scheduler } from "../engine/scheduler.js";
import { familyForModel } from "../families/index.js";
import { loadLlamaBackend } from "../models/llama-backend.js";
import { loadLlamaRankBackend } from "../models/llama-rank-backend.js";
import { readModelFacts } from "../models/model-facts.js";
import { resolveModel } from "../models/resolve.js";
import { buildApp } from "../server/app.js";
import { FAULT_ENV, parseFaultSpec, withFaults } from "../server/fault-injection.js";
import { loggerOptions } from "../server/logging.js";
import { ModelHolder } from "../server/model-state.js";
import type { ServedModel } from "../server/serving.js";
import type { ModelBackend } from "../engine/backend.js";
import type { ServeOptions } from "./serve-options.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  model: ModelHolder;
  /** Resolves when the model is loaded (or rejects when it fails to load). */
  ready: Promise<ServedModel>;
  close(): Promise<void>;
  /**
   * Graceful stop: /health turns 503 and new work gets 503 (with Connection: close) at once;
   * requests already received may finish for up to `timeoutMs`, then the server closes. "timeout"
   * when some were still running and had their connections cut.
   */
  shutdown(timeoutMs: number): Promise<"drained" | "timeout">;
}

export async function startServer(
  options: ServeOptions,
  say: (line: string) => void = console.log,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningServer> {
  // A testing aid (../server/fault-injection.ts), read once here; a bad value stops the start.
  const faults = parseFaultSpec(env[FAULT_ENV]);
  const model = new ModelHolder(options.servedModelName);
  const { app, metrics } = await buildApp({
    model,
    apiKeys: options.apiKeys,
    maxBodyBytes: options.maxBodyBytes,
    logger: loggerOptions(options.logLevel),
    limits: {
      maxDocuments: options.maxDocuments,
      maxPairs: options.maxPairs,
      maxChars: options.maxChars,
      requestTimeoutMs: options.requestTimeoutMs,
    },
    maxQueuedTokens: options.maxQueuedTokens,
    logRequests: options.logRequests,
    allowedOrigins: options.allowedOrigins,
    rateLimit: { perSecond: options.rateLimit, burst: options.rateLimitBurst },
  });
  const address = await app.listen({ host: options.host, port: options.port });
  const url = address.replace("://0.0.0.0", "://127.0.0.1");
  say(`rerankd listening on ${address} (docs at ${url}/docs)`);
  say(options.apiKeys.length > 0 ? `auth: on (${options.apiKeys.length} API key${options.apiKeys.length > 1 ? "s" : ""})` : "auth: off (no API key configured: every route is open)");
  if (faults) say(`TESTING AID: ${FAULT_ENV} is set: every ${faults.every}th evaluation is made to fail on purpose`);

  let backend: ModelBackend | null = null;
  const ready = (async () => {
    say(`loading model ${options.model} ...`);
    const resolved = await resolveModel(options.model, { device: options.device, dtype: options.dtype, say });
    let maxLength = options.maxLength;
    // llama.cpp says why a file does not load in its log; node-llama-cpp only "Failed to load model".
    const loadErrors: string[] = [];
    // The family is chosen from the file's header (architecture, metadata, tensors), and its readout
    // decides the backend: last-token logits on the causal one, a classifier head on the rank one.
    const facts = await readModelFacts(resolved.ggufPath);
    const definition = familyForModel(facts, options.family);
    const loadBackend = definition.readoutKind?.(facts) === "classifier" ? loadLlamaRankBackend : loadLlamaBackend;
    const loaded = await loadBackend({
      modelPath: resolved.ggufPath,
      device: options.device,
      threads: options.threads,
      lanes: options.maxNumSeqs,
      batchTokens: options.maxNumBatchedTokens,
      laneCapacity: ({ tokenizer }) => {
        const family = definition.bind(tokenizer, facts);
        maxLength ??= family.defaultMaxLength;
        return family.maxPairTokens(maxLength);
      },
      log: (level, message) => {
        if (level === "error" && model.state.status === "loading") loadErrors.push(message);
        app.log[level]({ source: "llama.cpp" }, message);
      },
    }).catch(async (error: unknown) => {
      // llama.cpp's log lines come through a thread-safe callback and may trail the rejection.
      await sleep(200);
      const reason = loadErrors.find((m) => /error loading model|invalid|corrupt|failed to read|not within/i.test(m)) ?? loadErrors[0];
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(reason ? `${message} (llama.cpp: ${reason.replace(/^llama_model_load: /, "")})` : message, { cause: error });
    });
    backend = faults ? withFaults(loaded, faults) : loaded;
    const family = definition.bind(backend.tokenizer, facts);
    const served: ServedModel = {
      servedModelName: options.servedModelName,
      root: resolved.root,
      maxLength: maxLength ?? family.defaultMaxLength,
      truncation: options.truncation,
      family,
      tokenizer: backend.tokenizer,
      scheduler: new Scheduler(backend, metrics.schedulerEvents()),
      createdAt: Math.floor(Date.now() / 1000),
      architecture: backend.info.architecture,
      device: backend.info.device,
    };
    model.state = { status: "ready", served };
    const info = backend.info;
    say(
      `model ready: ${options.servedModelName} (${family.name}, ${info.architecture}, max_length ${served.maxLength}) ` +
        `on ${info.device}, ${info.threads} threads, ${info.lanes} sequences, batch ${info.batchTokens} tokens`,
    );
    return served;
  })();
  ready.catch((error: unknown) => {
    model.state = { status: "failed", reason: error instanceof Error ? error.message : String(error) };
  });

  return {
    app,
    url,
    model,
    ready,
    async close() {
      await app.close();
      await ready.catch(() => undefined);
      await (backend as ModelBackend | null)?.dispose();
    },
    async shutdown(timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      if (model.state.status === "ready") model.state = { status: "draining", served: model.state.served };
      while (metrics.inFlight > 0 && performance.now() < deadline) await sleep(20);
      const drained = metrics.inFlight === 0;
      if (!drained) {
        app.log.warn({ inFlight: metrics.inFlight }, "shutdown timeout: closing the connections of requests still running");
        app.server.closeAllConnections();
      }
      await app.close();
      // A model still loading is waited for only as long as the timeout allows.
      await Promise.race([ready.catch(() => undefined), sleep(Math.max(0, deadline - performance.now()))]);
      await (backend as ModelBackend | null)?.dispose();
      return drained ? "drained" : "timeout";
    },
  };
}

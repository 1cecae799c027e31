/**
 * `rerankd serve`: listen first (so /health answers 503 while loading), then load the model,
 * bind its family, start the scheduler, and flip to ready.
 */
import type { FastifyInstance } from "fastify";
import { Scheduler } from "../engine/scheduler.js";
import { familyForArchitecture } from "../families/index.js";
import { loadLlamaBackend } from "../models/llama-backend.js";
import { resolveModel } from "../models/resolve.js";
import { buildApp } from "../server/app.js";
import { ModelHolder } from "../server/model-state.js";
import type { ServedModel } from "../server/serving.js";
import type { ModelBackend } from "../engine/backend.js";
import type { ServeOptions } from "./serve-options.js";

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  model: ModelHolder;
  /** Resolves when the model is loaded (or rejects when it fails to load). */
  ready: Promise<ServedModel>;
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions, say: (line: string) => void = console.log): Promise<RunningServer> {
  const model = new ModelHolder(options.servedModelName);
  const { app } = await buildApp({
    model,
    apiKeys: options.apiKeys,
    maxBodyBytes: options.maxBodyBytes,
    logger: options.logLevel === "silent" ? false : { level: options.logLevel },
  });
  const address = await app.listen({ host: options.host, port: options.port });
  const url = address.replace("://0.0.0.0", "://127.0.0.1");
  say(`rerankd listening on ${address} (docs at ${url}/docs)`);
  say(options.apiKeys.length > 0 ? `auth: on (${options.apiKeys.length} API key${options.apiKeys.length > 1 ? "s" : ""})` : "auth: off (no API key configured: every route is open)");

  let backend: ModelBackend | null = null;
  const ready = (async () => {
    say(`loading model ${options.model} ...`);
    const resolved = await resolveModel(options.model, { device: options.device, say });
    let maxLength = options.maxLength;
    backend = await loadLlamaBackend({
      modelPath: resolved.ggufPath,
      device: options.device,
      threads: options.threads,
      lanes: options.maxNumSeqs,
      batchTokens: options.maxNumBatchedTokens,
      laneCapacity: ({ tokenizer, architecture }) => {
        const family = familyForArchitecture(architecture).bind(tokenizer);
        maxLength ??= family.defaultMaxLength;
        return family.maxPairTokens(maxLength);
      },
      log: (level, message) => app.log[level]({ source: "llama.cpp" }, message),
    });
    const family = familyForArchitecture(backend.info.architecture).bind(backend.tokenizer);
    const served: ServedModel = {
      servedModelName: options.servedModelName,
      root: resolved.root,
      maxLength: maxLength ?? family.defaultMaxLength,
      truncation: options.truncation,
      family,
      tokenizer: backend.tokenizer,
      scheduler: new Scheduler(backend),
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
  };
}

/**
 * The HTTP app over a FakeBackend, in-process, with the hardening options of buildApp exposed
 * (limits, queue bound, CORS, rate limit, log capture): for the reliability tests that need no
 * real model. The fake's scores are a pure function of the pair's tokens.
 */
import { Writable } from "node:stream";
import { buildApp, type AppOptions } from "../../src/server/app.js";
import { ModelHolder } from "../../src/server/model-state.js";
import { Scheduler } from "../../src/engine/scheduler.js";
import { FakeBackend } from "../support/fake-backend.js";
import { serveFakeModel } from "../support/fake-app.js";

export interface HarnessOptions extends Partial<Omit<AppOptions, "model" | "logger">> {
  lanes?: number;
  delayMs?: number;
  /** Capture JSON log lines at this level (default: no logger). */
  logLevel?: string;
}

export async function hardenedApp(options: HarnessOptions = {}) {
  const backend = new FakeBackend(options.lanes ?? 2);
  backend.delayMs = options.delayMs ?? 0;
  const model = new ModelHolder("test-model");
  const logs: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const { app, metrics, admission } = await buildApp({
    apiKeys: [],
    maxBodyBytes: 1 << 20,
    ...options,
    model,
    logger: options.logLevel ? { level: options.logLevel, stream } : false,
  });
  const scheduler = new Scheduler(backend, metrics.schedulerEvents());
  serveFakeModel(model, backend, scheduler);
  await app.ready();
  return { app, backend, model, metrics, admission, scheduler, logs };
}

export type Harness = Awaited<ReturnType<typeof hardenedApp>>;

export async function post(
  app: Harness["app"],
  url: string,
  payload: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  const response = await app.inject({
    method: "POST",
    url,
    payload: typeof payload === "string" || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload),
    headers: { "content-type": "application/json", ...headers },
  });
  let body: Record<string, unknown>;
  try {
    body = response.json();
  } catch {
    body = { unparsed: response.body };
  }
  return { status: response.statusCode, body, headers: response.headers };
}

/** Asserts API.md's error shape and returns the error. */
export function errorOf(r: { status: number; body: Record<string, unknown> }): { message: string; type: string; param: string | null; code: number } {
  const error = r.body.error as { message: string; type: string; param: string | null; code: number } | undefined;
  if (!error || typeof error.message !== "string" || typeof error.type !== "string" || error.code !== r.status) {
    throw new Error(`not an API.md error (${r.status}): ${JSON.stringify(r.body).slice(0, 300)}`);
  }
  if (!(error.param === null || typeof error.param === "string")) throw new Error(`bad param: ${JSON.stringify(error.param)}`);
  return error;
}

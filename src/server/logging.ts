/**
 * Logging: JSON lines (pino, Fastify's logger) on stderr, one line per completed request with its
 * id (X-Request-Id when the client sent a usable one), route, status, duration and the body's
 * `user` field. Fastify's own two lines per request are off. Query and document text is never
 * logged unless the operator asks for it (--log-requests); API keys and headers never are.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from "fastify";
import type { RerankdError } from "./errors.js";

export interface LoggingOptions {
  /** pino level, or "silent" for no logger at all. */
  level: string;
  /** Include the request's texts (query, documents, prompt) in its log line. */
  logRequests: boolean;
}

/** Fastify's `logger` option: JSON on stderr, nothing about headers. */
export function loggerOptions(level: string): FastifyServerOptions["logger"] {
  if (level === "silent") return false;
  return {
    level,
    stream: process.stderr,
    // Belt and braces: nothing here logs headers, but should a future line include the request,
    // its credentials stay out.
    redact: { paths: ["req.headers.authorization", "req.headers.cookie", "headers.authorization"], censor: "[redacted]" },
  };
}

/** Fields whose text is the client's data: logged only with --log-requests. */
const TEXT_FIELDS = ["query", "documents", "texts", "queries", "text_1", "text_2", "data_1", "data_2", "prompt"] as const;
const MAX_LOGGED_CHARS = 10_000;

const failures = new WeakMap<FastifyRequest, { error: RerankdError; cause: unknown }>();

/** The error handler notes what a request failed with, for its one log line. */
export function noteRequestError(request: FastifyRequest, error: RerankdError, cause: unknown): void {
  failures.set(request, { error, cause });
}

/** The error a request failed with, if the error handler saw one. */
export function requestFailure(request: FastifyRequest): RerankdError | undefined {
  return failures.get(request)?.error;
}

function clip(value: unknown): unknown {
  const text = JSON.stringify(value) ?? "";
  return text.length > MAX_LOGGED_CHARS ? `${text.slice(0, MAX_LOGGED_CHARS)}... (${text.length} chars)` : value;
}

/** The `user` field of a JSON body, if a string, cut to a sane length. */
export function bodyUser(body: unknown): string | undefined {
  if (body === null || typeof body !== "object") return undefined;
  const user = (body as { user?: unknown }).user;
  return typeof user === "string" ? user.slice(0, 256) : undefined;
}

/**
 * Logs one line when a request ends (answered, or its client gone), and keeps `onEnd` informed,
 * e.g. for the in-flight count a graceful shutdown waits on.
 */
export function registerRequestLog(
  app: FastifyInstance,
  options: { logRequests: boolean; onStart?: () => void; onEnd?: (request: FastifyRequest, reply: FastifyReply, clientClosed: boolean) => void },
): void {
  app.addHook("onRequest", async (request, reply) => {
    options.onStart?.();
    reply.raw.once("close", () => {
      // writableEnded: end() was called (the answer was given); also true under light-my-request.
      const clientClosed = !reply.raw.writableEnded;
      options.onEnd?.(request, reply, clientClosed);
      const status = clientClosed ? 499 : reply.statusCode;
      const failure = failures.get(request);
      const line: Record<string, unknown> = {
        reqId: request.id,
        method: request.method,
        route: request.routeOptions.url ?? "unmatched",
        status,
        ms: Math.round(reply.elapsedTime * 10) / 10,
      };
      const user = bodyUser(request.body);
      if (user !== undefined) line.user = user;
      if (clientClosed) line.outcome = "client-closed";
      if (failure) {
        line.error = { type: failure.error.type, message: failure.error.message };
        if (failure.error.status >= 500) line.err = failure.cause;
      }
      if (options.logRequests && request.body !== null && typeof request.body === "object") {
        const body = request.body as Record<string, unknown>;
        for (const field of TEXT_FIELDS) if (body[field] !== undefined) line[field] = clip(body[field]);
      }
      if (status >= 500 && status !== 503 && status !== 504) request.log.error(line, "request failed");
      else request.log.info(line, "request completed");
    });
  });
}

/**
 * The HTTP application: Fastify with TypeBox validation, the OpenAPI document and docs page,
 * authentication, error mapping and metrics, and the routes. It knows nothing about llama.cpp.
 */
import { randomUUID } from "node:crypto";
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { Metrics } from "../metrics/registry.js";
import { VERSION } from "../version.js";
import { Admission } from "./admission.js";
import { apiKeyGuard } from "./auth.js";
import { registerCors } from "./cors.js";
import { registerErrorHandling } from "./error-handler.js";
import { RateLimitError, ServiceUnavailableError, TimeoutError } from "./errors.js";
import { DEFAULT_LIMITS, bodyLimitsHook, type RequestLimits } from "./limits.js";
import { registerRequestLog, requestFailure } from "./logging.js";
import { RateLimiter, rateLimitHook } from "./rate-limit.js";
import type { ModelHolder } from "./model-state.js";
import { infoRoutes } from "./routes/info.js";
import { playgroundRoutes } from "./routes/playground.js";
import { scoringRoutes } from "./routes/scoring.js";
import { tokenizeRoutes } from "./routes/tokenize.js";

export interface AppOptions {
  model: ModelHolder;
  /** Accepted API keys; none = open server. */
  apiKeys: readonly string[];
  /** Largest accepted request body in bytes. */
  maxBodyBytes: number;
  logger: FastifyServerOptions["logger"];
  /** Documents, pairs, characters and deadline per request (./limits.ts); defaults if absent. */
  limits?: RequestLimits;
  /** Bound on queued tokens past which scoring requests get 429 (./admission.ts); 0 or absent = none. */
  maxQueuedTokens?: number;
  /** Log each request's texts too (--log-requests). */
  logRequests?: boolean;
  /** CORS origins; empty or absent = CORS off. */
  allowedOrigins?: readonly string[];
  /** Per-key rate limit; absent or 0 = none. */
  rateLimit?: { perSecond: number; burst: number };
}

/** X-Request-Id values we echo and embed in response ids: short and printable. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp(options: AppOptions): Promise<{ app: FastifyInstance; metrics: Metrics; admission: Admission | null }> {
  const { model } = options;
  const app = Fastify({
    logger: options.logger,
    // One line per request, written by ./logging.ts, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxBodyBytes,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: {
      customOptions: {
        coerceTypes: false,
        removeAdditional: false,
        useDefaults: false,
        allErrors: false,
        verbose: true,
        // Named request examples for the OpenAPI document (@fastify/swagger reads them): not validation.
        keywords: ["x-examples"],
      },
    },
    return503OnClosing: true,
  });

  const metrics = new Metrics(
    () => model.peek()?.scheduler.stats() ?? null,
    (): Record<string, string> => {
      const served = model.peek();
      return served
        ? { served_model_name: served.servedModelName, architecture: served.architecture, family: served.family.name, device: served.device }
        : {};
    },
  );

  const admission =
    options.maxQueuedTokens && options.maxQueuedTokens > 0
      ? new Admission({ maxQueuedTokens: options.maxQueuedTokens, queuedTokens: () => model.peek()?.scheduler.stats().queuedTokens ?? 0 })
      : null;
  app.decorate("rerankdLimits", options.limits ?? DEFAULT_LIMITS);
  app.decorate("rerankdAdmission", admission);

  registerErrorHandling(app);
  registerRequestLog(app, {
    logRequests: options.logRequests ?? false,
    onStart: () => metrics.inFlight++,
    onEnd: (request, _reply, clientClosed) => {
      metrics.inFlight--;
      const failure = requestFailure(request);
      if (clientClosed) metrics.rejected.inc({ reason: "client_closed" });
      else if (failure instanceof RateLimitError) metrics.rejected.inc({ reason: "queue_full" });
      else if (failure instanceof TimeoutError) metrics.rejected.inc({ reason: "deadline" });
      else if (failure instanceof ServiceUnavailableError && model.state.status === "draining") metrics.rejected.inc({ reason: "draining" });
    },
  });
  // JSON only: Fastify also parses text/plain by default, which would turn a form or text body
  // into a confusing validation error instead of a 415.
  app.removeContentTypeParser("text/plain");

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "rerankd",
        version: VERSION,
        description:
          "A reranking server with vLLM's OpenAI-compatible rerank and score API. Send `Authorization: Bearer <key>` when the server has API keys.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: options.apiKeys.length > 0 ? [{ bearer: [] }] : [],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  // Order matters: CORS first (preflights carry no key), then the key, then the key's rate.
  registerCors(app, options.allowedOrigins ?? []);
  if (options.apiKeys.length > 0) app.addHook("onRequest", apiKeyGuard(options.apiKeys));
  if (options.rateLimit && options.rateLimit.perSecond > 0) {
    const limiter = new RateLimiter(options.rateLimit.perSecond, options.rateLimit.burst);
    app.addHook("onRequest", rateLimitHook(limiter, options.apiKeys.length > 0, () => metrics.rejected.inc({ reason: "rate_limited" })));
  }
  app.addHook("preValidation", bodyLimitsHook(options.limits ?? DEFAULT_LIMITS));

  app.addHook("onSend", async (request, reply, payload) => {
    reply.header("X-Request-Id", request.id);
    // While draining, keep-alive clients are told to reconnect (to another replica).
    if (model.state.status === "draining") reply.header("Connection", "close");
    return payload;
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.requestSeconds.observe({ route }, reply.elapsedTime / 1000);
  });

  scoringRoutes(app, model, metrics);
  tokenizeRoutes(app, model);
  infoRoutes(app, model, metrics);
  playgroundRoutes(app);
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  return { app, metrics, admission };
}

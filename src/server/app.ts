/**
 * The HTTP application: Fastify with TypeBox validation, the OpenAPI document and docs page,
 * authentication, error mapping and metrics, and the routes. It knows nothing about llama.cpp.
 */
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { Metrics } from "../metrics/registry.js";
import { VERSION } from "../version.js";
import { apiKeyGuard } from "./auth.js";
import { registerErrorHandling } from "./error-handler.js";
import type { ModelHolder } from "./model-state.js";
import { infoRoutes } from "./routes/info.js";
import { scoringRoutes } from "./routes/scoring.js";
import { tokenizeRoutes } from "./routes/tokenize.js";

export interface AppOptions {
  model: ModelHolder;
  /** Accepted API keys; none = open server. */
  apiKeys: readonly string[];
  /** Largest accepted request body in bytes. */
  maxBodyBytes: number;
  logger: FastifyServerOptions["logger"];
}

/** X-Request-Id values we echo and embed in response ids: short and printable. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp(options: AppOptions): Promise<{ app: FastifyInstance; metrics: Metrics }> {
  const { model } = options;
  const app = Fastify({
    logger: options.logger,
    bodyLimit: options.maxBodyBytes,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: {
      customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, verbose: true },
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

  registerErrorHandling(app);
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

  if (options.apiKeys.length > 0) app.addHook("onRequest", apiKeyGuard(options.apiKeys));

  app.addHook("onSend", async (request, reply, payload) => {
    reply.header("X-Request-Id", request.id);
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
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  return { app, metrics };
}

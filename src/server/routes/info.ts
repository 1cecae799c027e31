/** GET /v1/models, /health, /ping, /version, /metrics. */
import type { FastifyInstance } from "fastify";
import type { Metrics } from "../../metrics/registry.js";
import type { ModelHolder } from "../model-state.js";
import { ModelList, VersionResponse } from "../schemas.js";
import { VERSION } from "../../version.js";

export function infoRoutes(app: FastifyInstance, model: ModelHolder, metrics: Metrics): void {
  app.get(
    "/v1/models",
    { schema: { summary: "The served model", tags: ["info"], response: { 200: ModelList } } },
    async () => {
      const served = model.peek();
      return {
        object: "list" as const,
        data: served
          ? [
              {
                id: served.servedModelName,
                object: "model" as const,
                created: served.createdAt,
                owned_by: "rerankd",
                root: served.root,
                max_model_len: served.maxLength,
              },
            ]
          : [],
      };
    },
  );

  const health = { schema: { summary: "200 when the model is ready; 503 while loading, draining or failed", tags: ["info"] } };
  for (const url of ["/health", "/ping"]) {
    app.get(url, health, async (_request, reply) => reply.code(model.state.status === "ready" ? 200 : 503).send());
  }

  app.get("/version", { schema: { summary: "Server version", tags: ["info"], response: { 200: VersionResponse } } }, async () => ({
    version: VERSION,
  }));

  app.get("/metrics", { schema: { summary: "Prometheus metrics", tags: ["info"] } }, async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

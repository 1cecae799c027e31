/** POST /v1/rerank, /rerank, /v2/rerank, /v1/score, /score. */
import type { FastifyInstance } from "fastify";
import { callContext } from "../request-context.js";
import type { Metrics } from "../../metrics/registry.js";
import type { ModelHolder } from "../model-state.js";
import { ErrorResponse, RerankRequest, RerankResponse, ScoreRequest, ScoreResponse } from "../schemas.js";
import { rerank, score, type ScoringAccount } from "../serving.js";
import { examples } from "../examples.js";

export const RERANK_ROUTES = ["/v1/rerank", "/rerank", "/v2/rerank"] as const;
export const SCORE_ROUTES = ["/v1/score", "/score"] as const;

const errors = { 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse, 429: ErrorResponse, 500: ErrorResponse, 503: ErrorResponse, 504: ErrorResponse };

export function scoringRoutes(app: FastifyInstance, model: ModelHolder, metrics: Metrics): void {
  const account = (a: ScoringAccount) => {
    metrics.promptTokens.inc(a.promptTokens);
    metrics.evaluatedTokens.inc(a.evaluatedTokens);
    metrics.pairs.inc({ outcome: "scored" }, a.pairs);
  };

  for (const url of RERANK_ROUTES) {
    app.post<{ Body: RerankRequest }>(
      url,
      {
        schema: {
          summary: "Rerank documents against one query",
          description: "Scores every document against the query and returns them sorted by relevance (vLLM's /v1/rerank; Cohere v2 clients call /v2/rerank).",
          tags: ["scoring"],
          body: { ...RerankRequest, examples: examples.rerank },
          response: { 200: RerankResponse, ...errors },
        },
      },
      async (request, reply) => {
        const served = model.require();
        const { response, account: a } = await rerank(served, request.body, callContext(request, reply));
        account(a);
        return response;
      },
    );
  }

  for (const url of SCORE_ROUTES) {
    app.post<{ Body: ScoreRequest }>(
      url,
      {
        schema: {
          summary: "Score aligned query-document pairs",
          description: "1:1, 1:N (one query, many documents) or N:N (zipped) pairs; results in pair order, unsorted (vLLM's /v1/score).",
          tags: ["scoring"],
          body: { ...ScoreRequest, examples: examples.score },
          response: { 200: ScoreResponse, ...errors },
        },
      },
      async (request, reply) => {
        const served = model.require();
        const { response, account: a } = await score(served, request.body, callContext(request, reply));
        account(a);
        return response;
      },
    );
  }
}

/** POST /v1/rerank, /rerank, /v2/rerank, /v1/score, /score. */
import type { FastifyInstance } from "fastify";
import { callContext } from "../request-context.js";
import type { Metrics } from "../../metrics/registry.js";
import type { ModelHolder } from "../model-state.js";
import { ErrorResponse, RerankBody, RerankResponse, ScoreRequest, ScoreResponse, TeiRerankResponse } from "../schemas.js";
import { rerank, score, type ScoringAccount } from "../serving.js";
import { rerankExamples, scoreExamples } from "../examples.js";
import { teiRerank, validateRerankBody } from "../tei.js";

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
    app.post<{ Body: RerankBody }>(
      url,
      {
        schema: {
          summary: "Rerank documents against one query",
          description:
            "Scores every document against the query and returns them sorted by relevance (vLLM's /v1/rerank; Cohere v2 clients call /v2/rerank). " +
            "A body with `texts` instead of `documents` is text-embeddings-inference's request, answered in TEI's shape: a bare array of `{index, score, text?}`.",
          tags: ["scoring"],
          body: { ...RerankBody, "x-examples": rerankExamples },
          response: { 200: { anyOf: [RerankResponse, TeiRerankResponse] }, ...errors },
        },
        preValidation: validateRerankBody,
      },
      async (request, reply) => {
        const served = model.require();
        const body = request.body;
        const { response, account: a } =
          "texts" in body
            ? await teiRerank(served, body, callContext(request, reply))
            : await rerank(served, body, callContext(request, reply));
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
          body: { ...ScoreRequest, "x-examples": scoreExamples },
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

/**
 * Hugging Face text-embeddings-inference's rerank dialect, served by the same rerank routes: a body
 * with `texts` is a TEI request and gets TEI's answer, a bare array of `{index, score, text?}`
 * sorted by score. Scoring is vLLM's rerank (./serving.ts) with TEI's fields mapped onto it:
 *
 * | TEI                  | here                                                                   |
 * |----------------------|------------------------------------------------------------------------|
 * | `raw_scores`         | `use_activation: !raw_scores` (TEI's default is the sigmoid, as ours)  |
 * | `return_text`        | `return_documents` (TEI's default is false)                            |
 * | `truncate`           | true: truncate as the model's reference does; false: 400 for a pair too long; absent: --truncation |
 * | `truncation_direction` | "Right" only: the reference cuts a document's end                    |
 *
 * Errors keep API.md's shape (`{error: {message, type, param, code}}`), not TEI's
 * `{error, error_type}`: one error shape per server, and TEI clients act on the HTTP status.
 */
import type { FastifyRequest } from "fastify";
import { validationError } from "./error-handler.js";
import { BadRequestError } from "./errors.js";
import { isTeiRerankRequest, RerankRequest, TeiRerankRequest, type TeiRerankResponse } from "./schemas.js";
import { rerank, type CallContext, type ScoringAccount, type ServedModel } from "./serving.js";

export async function teiRerank(
  served: ServedModel,
  body: TeiRerankRequest,
  call: CallContext,
): Promise<{ response: TeiRerankResponse; account: ScoringAccount }> {
  if (body.truncation_direction === "Left" || body.truncation_direction === "left") {
    throw new BadRequestError(
      "`truncation_direction` \"Left\" is not supported: a pair too long loses the end of its text, as the model's reference implementation does.",
      "truncation_direction",
    );
  }
  // TEI's `truncate` decides, for this request only, what the server's --truncation decides otherwise.
  const truncation = body.truncate === true ? "auto" : body.truncate === false ? "error" : served.truncation;
  const { response, account } = await rerank(
    truncation === served.truncation ? served : { ...served, truncation },
    {
      query: body.query,
      documents: body.texts,
      use_activation: !(body.raw_scores ?? false),
      return_documents: body.return_text ?? false,
    },
    call,
    "texts",
  );
  return {
    response: response.results.map(({ index, relevance_score, document }) =>
      document ? { index, score: relevance_score, text: document.text } : { index, score: relevance_score },
    ),
    account,
  };
}

/**
 * The rerank routes' body validation: TEI's schema when the body has `texts`, vLLM's otherwise,
 * with Fastify's own validator (the same Ajv and options as every route), so a mistake is reported
 * against the shape the client meant (`texts[1] must be a string`, not "must match a union").
 * Runs as the routes' preValidation hook; Fastify's validation of the union that follows then passes.
 */
export async function validateRerankBody(request: FastifyRequest): Promise<void> {
  const schema = isTeiRerankRequest(request.body) ? TeiRerankRequest : RerankRequest;
  const validate = request.compileValidationSchema(schema, "body");
  if (!validate(request.body)) {
    // Ajv's error objects, which validationError reads as Fastify's error handler does.
    throw validationError((validate.errors ?? []) as unknown as Parameters<typeof validationError>[0]);
  }
}

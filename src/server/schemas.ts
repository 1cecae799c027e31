/**
 * The wire protocol: every request and response body as a TypeBox schema. These are the single
 * source of request validation (Fastify's Ajv), the TypeScript types the handlers see, and the
 * OpenAPI document at /openapi.json. Serving logic lives in ./serving.ts, never here.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";

/** An optional field that also accepts JSON null, as vLLM's pydantic models (and many clients) do. */
const Optional = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));

export const DocumentInput = Type.Union(
  [Type.String(), Type.Object({ text: Type.String() }, { additionalProperties: true })],
  { description: 'a string, or an object with a string "text"' },
);
export type DocumentInput = Static<typeof DocumentInput>;

/** Fields shared by /rerank and /score that shape how pairs are tokenized and scored. */
const scoringOptions = {
  model: Optional(Type.String({ description: "Served model name; defaults to the only model served." })),
  use_activation: Optional(
    Type.Boolean({ description: "true (default): sigmoid of the model's logit, in [0, 1]; false: the raw logit." }),
  ),
  truncate_prompt_tokens: Optional(
    Type.Integer({ minimum: -1, description: "Cap on a pair's length in tokens (the family's max_length); -1 = the server's maximum." }),
  ),
  max_tokens_per_doc: Optional(
    Type.Integer({ minimum: 0, description: "Cut each document to this many tokens before templating; 0 = no cap." }),
  ),
  user: Optional(Type.String({ description: "End-user id: recorded in the request log, never affects scores." })),
  priority: Optional(Type.Integer({ description: "Accepted for vLLM compatibility." })),
  request_id: Optional(Type.String({ description: "Accepted for vLLM compatibility." })),
  instruction: Optional(
    Type.String({
      description: "The task instruction of an instruction-following reranker (Qwen3-Reranker's <Instruct>; default: the model card's). Other models refuse it.",
    }),
  ),
};

export const RerankRequest = Type.Object(
  {
    ...scoringOptions,
    query: Type.String({ description: "The query every document is compared with." }),
    documents: Type.Array(DocumentInput, { minItems: 1, description: "Candidate documents (at least one)." }),
    top_n: Optional(
      Type.Integer({ minimum: 0, description: "Return only the N best; 0 or absent = all, sorted." }),
    ),
    return_documents: Optional(Type.Boolean({ description: "false: omit each result's document (default true)." })),
  },
  { additionalProperties: true },
);
export type RerankRequest = Static<typeof RerankRequest>;

const Usage = Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() });

export const RerankResponse = Type.Object(
  {
    id: Type.String(),
    model: Type.String(),
    usage: Usage,
    results: Type.Array(
      Type.Object({
        index: Type.Integer(),
        document: Type.Optional(Type.Object({ text: Type.String() })),
        relevance_score: Type.Number(),
      }),
    ),
  },
  {},
);
export type RerankResponse = Static<typeof RerankResponse>;

/**
 * Hugging Face text-embeddings-inference's /rerank request. The rerank routes take it when the body
 * has `texts` (vLLM's shape has `documents`), so TEI clients work unchanged.
 */
export const TeiRerankRequest = Type.Object(
  {
    query: Type.String({ description: "The query every text is compared with." }),
    texts: Type.Array(Type.String(), { minItems: 1, description: "Candidate texts (at least one)." }),
    raw_scores: Optional(Type.Boolean({ description: "true: the raw logit; false (default): its sigmoid, in [0, 1]." })),
    return_text: Optional(Type.Boolean({ description: "true: each result carries its text (default false)." })),
    truncate: Optional(
      Type.Boolean({
        description: "true: cut a pair that is too long as the model's reference does; false: refuse it with 400; absent: the server's --truncation.",
      }),
    ),
    truncation_direction: Optional(
      // An enum rather than a union of literals: its 400 then names the field, not a branch.
      Type.Unsafe<"Right" | "right" | "Left" | "left">({
        type: "string",
        enum: ["Right", "right", "Left", "left"],
        description: '"Right" (default): a long text loses its end; "Left" is refused (this model is truncated as its reference does).',
      }),
    ),
  },
  { additionalProperties: true, description: "text-embeddings-inference's rerank request: `query` and `texts`." },
);
export type TeiRerankRequest = Static<typeof TeiRerankRequest>;

/** TEI's answer: a bare array, sorted by score (descending). */
export const TeiRerankResponse = Type.Array(
  Type.Object({ index: Type.Integer(), score: Type.Number(), text: Type.Optional(Type.String()) }),
  { description: "text-embeddings-inference's rerank response: results sorted by score." },
);
export type TeiRerankResponse = Static<typeof TeiRerankResponse>;

/** What the rerank routes accept: vLLM's (and Cohere's, Jina's) request, or TEI's (it has `texts`). */
export const RerankBody = Type.Union([RerankRequest, TeiRerankRequest], {
  description: "vLLM's rerank request (`query` + `documents`), or text-embeddings-inference's (`query` + `texts`).",
});
export type RerankBody = Static<typeof RerankBody>;

/** TEI's shape is chosen by the presence of `texts`, whatever else the body holds. */
export function isTeiRerankRequest(body: unknown): boolean {
  return body !== null && typeof body === "object" && !Array.isArray(body) && (body as { texts?: unknown }).texts !== undefined;
}

const ScoreSide = Type.Union([Type.String(), Type.Array(DocumentInput)], {
  description: "a string, or an array of strings (or {text} objects)",
});
export type ScoreSide = Static<typeof ScoreSide>;

export const ScoreRequest = Type.Object(
  {
    ...scoringOptions,
    queries: Optional(ScoreSide),
    documents: Optional(ScoreSide),
    text_1: Optional(ScoreSide),
    text_2: Optional(ScoreSide),
    data_1: Optional(ScoreSide),
    data_2: Optional(ScoreSide),
  },
  {
    additionalProperties: true,
    description: "Pairs as queries+documents (or text_1+text_2, data_1+data_2): 1:1, 1:N or N:N.",
  },
);
export type ScoreRequest = Static<typeof ScoreRequest>;

export const ScoreResponse = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("list"),
    created: Type.Integer(),
    model: Type.String(),
    data: Type.Array(Type.Object({ index: Type.Integer(), object: Type.Literal("score"), score: Type.Number() })),
    usage: Usage,
  },
  {},
);
export type ScoreResponse = Static<typeof ScoreResponse>;

export const TokenizeRequest = Type.Object(
  {
    model: Optional(Type.String()),
    prompt: Type.String(),
    add_special_tokens: Optional(Type.Boolean({ description: "Prepend the model's BOS token (default true)." })),
  },
  { additionalProperties: true },
);
export type TokenizeRequest = Static<typeof TokenizeRequest>;

export const TokenizeResponse = Type.Object(
  { count: Type.Integer(), max_model_len: Type.Integer(), tokens: Type.Array(Type.Integer()) },
  {},
);

export const DetokenizeRequest = Type.Object(
  { model: Optional(Type.String()), tokens: Type.Array(Type.Integer({ minimum: 0 })) },
  { additionalProperties: true },
);
export type DetokenizeRequest = Static<typeof DetokenizeRequest>;

export const DetokenizeResponse = Type.Object({ prompt: Type.String() }, {});

export const ModelList = Type.Object(
  {
    object: Type.Literal("list"),
    data: Type.Array(
      Type.Object({
        id: Type.String(),
        object: Type.Literal("model"),
        created: Type.Integer(),
        owned_by: Type.String(),
        root: Type.String(),
        max_model_len: Type.Integer(),
      }),
    ),
  },
  {},
);

export const VersionResponse = Type.Object({ version: Type.String() }, {});

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.String(),
      param: Type.Union([Type.String(), Type.Null()]),
      code: Type.Integer(),
    }),
  },
  {},
);
export type ErrorResponse = Static<typeof ErrorResponse>;

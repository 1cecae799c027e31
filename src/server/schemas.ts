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

/** POST /tokenize and /detokenize, with the served model's tokenizer. */
import type { FastifyInstance } from "fastify";
import { BadRequestError } from "../errors.js";
import type { ModelHolder } from "../model-state.js";
import { DetokenizeRequest, DetokenizeResponse, ErrorResponse, TokenizeRequest, TokenizeResponse } from "../schemas.js";
import { checkModel } from "../serving.js";

export function tokenizeRoutes(app: FastifyInstance, model: ModelHolder): void {
  app.post<{ Body: TokenizeRequest }>(
    "/tokenize",
    {
      schema: {
        summary: "Tokenize text with the served model's tokenizer",
        tags: ["tokenizer"],
        body: TokenizeRequest,
        response: { 200: TokenizeResponse, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const served = model.require();
      checkModel(served, request.body.model);
      const bos = served.tokenizer.bosToken;
      const tokens = served.tokenizer.tokenize(request.body.prompt);
      if ((request.body.add_special_tokens ?? true) && bos !== null) tokens.unshift(bos);
      return { count: tokens.length, max_model_len: served.maxLength, tokens };
    },
  );

  app.post<{ Body: DetokenizeRequest }>(
    "/detokenize",
    {
      schema: {
        summary: "Turn token ids back into text",
        tags: ["tokenizer"],
        body: DetokenizeRequest,
        response: { 200: DetokenizeResponse, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const served = model.require();
      checkModel(served, request.body.model);
      const size = served.tokenizer.vocabularySize;
      const bad = request.body.tokens.findIndex((t) => t >= size);
      if (bad >= 0) {
        throw new BadRequestError(`\`tokens[${bad}]\` (${request.body.tokens[bad]}) is not a token id of this model (vocabulary size ${size}).`, "tokens");
      }
      return { prompt: served.tokenizer.detokenize(request.body.tokens) };
    },
  );
}

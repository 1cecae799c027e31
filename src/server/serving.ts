/**
 * Serving logic for the scoring routes (vLLM's split: schemas are the protocol, this is the
 * serving): requests become pairs through the model family, pairs go to the scheduler, readouts
 * come back as scores in API.md's response shapes.
 */
import type { Tokenizer } from "../engine/backend.js";
import type { Scheduler } from "../engine/scheduler.js";
import type { Admission } from "./admission.js";
import { PairTooLongError, type PairLimits, type PairTokens, type PreparedQuery, type ScoringFamily, type TruncationMode } from "../families/types.js";
import { BadRequestError, NotFoundError } from "./errors.js";
import type {
  DocumentInput,
  RerankRequest,
  RerankResponse,
  ScoreRequest,
  ScoreResponse,
  ScoreSide,
} from "./schemas.js";

export interface ServedModel {
  servedModelName: string;
  /** What the model was loaded from (the `root` of /v1/models). */
  root: string;
  maxLength: number;
  truncation: TruncationMode;
  family: ScoringFamily;
  tokenizer: Tokenizer;
  scheduler: Scheduler;
  createdAt: number;
  /** GGUF general.architecture, e.g. "gemma". */
  architecture: string;
  device: string;
}

export interface CallContext {
  requestId: string;
  signal: AbortSignal;
  /** The queue bound (./admission.ts): checked once the request's pairs are tokenized. */
  admission?: Admission | null;
}

/** What a scoring call adds to the metrics. */
export interface ScoringAccount {
  promptTokens: number;
  evaluatedTokens: number;
  pairs: number;
}

interface ScoringOptionFields {
  model?: string | null;
  use_activation?: boolean | null;
  truncate_prompt_tokens?: number | null;
  max_tokens_per_doc?: number | null;
  instruction?: string | null;
}

export function checkModel(served: ServedModel, model: string | null | undefined): void {
  if (model !== undefined && model !== null && model !== served.servedModelName) {
    // A name, never a path: compared with the served name only, and echoed cut short.
    const shown = model.length > 100 ? `${model.slice(0, 100)}...` : model;
    throw new NotFoundError(`The model \`${shown}\` does not exist; this server serves \`${served.servedModelName}\`.`, "model");
  }
}

function pairLimits(served: ServedModel, body: ScoringOptionFields): PairLimits {
  const cap = body.truncate_prompt_tokens;
  if (cap !== undefined && cap !== null && cap > served.maxLength) {
    throw new BadRequestError(
      `truncate_prompt_tokens (${cap}) is greater than the maximum length of this server (${served.maxLength}).`,
      "truncate_prompt_tokens",
    );
  }
  const instruction = body.instruction ?? undefined;
  if (instruction !== undefined && served.family.defaultInstruction === undefined) {
    throw new BadRequestError(`This model (${served.family.name}) takes no instruction; remove \`instruction\`.`, "instruction");
  }
  return {
    maxLength: cap === undefined || cap === null || cap === -1 ? served.maxLength : cap,
    maxTokensPerDoc: body.max_tokens_per_doc ?? 0,
    truncation: served.truncation,
    ...(instruction !== undefined ? { instruction } : {}),
  };
}

export const documentText = (document: DocumentInput): string => (typeof document === "string" ? document : document.text);

interface PairSpec {
  query: string;
  document: string;
  /** Where the document sits in the request, for error messages. */
  field: string;
}

/** Tokenizes every pair, each distinct query once. */
function buildPairs(served: ServedModel, specs: readonly PairSpec[], limits: PairLimits): PairTokens[] {
  const queries = new Map<string, PreparedQuery>();
  return specs.map((spec) => {
    try {
      let query = queries.get(spec.query);
      if (!query) {
        query = served.family.prepareQuery(spec.query, limits);
        queries.set(spec.query, query);
      }
      return served.family.buildPair(query, spec.document, limits);
    } catch (error) {
      if (error instanceof PairTooLongError) {
        const what = error.part === "query" ? "The query" : `The document ${spec.field}`;
        throw new BadRequestError(
          `${what} is ${error.tokens} tokens, more than the ${error.maxTokens} that fit in max_length ${limits.maxLength}; ` +
            "shorten it, or start the server with --truncation auto to truncate as the model's reference implementation does.",
          "input_tokens",
        );
      }
      throw error;
    }
  });
}

async function scorePairs(
  served: ServedModel,
  specs: readonly PairSpec[],
  body: ScoringOptionFields,
  call: CallContext,
): Promise<{ scores: number[]; account: ScoringAccount }> {
  const pairs = buildPairs(served, specs, pairLimits(served, body));
  const queuedTokens = pairs.reduce((n, p) => n + p.tokens.length, 0);
  // No await between admission and submission: the check and the enqueue are one step.
  call.admission?.admit(queuedTokens);
  const result = await served.scheduler.submit({ pairs, readout: served.family.readout, signal: call.signal });
  call.admission?.completed(queuedTokens);
  const activate = body.use_activation ?? true;
  const scores = result.values.map((values) => {
    const raw = served.family.rawScore(values);
    return activate ? served.family.activate(raw) : raw;
  });
  const promptTokens = pairs.reduce((n, p) => n + p.tokens.length, 0);
  return { scores, account: { promptTokens, evaluatedTokens: result.evaluatedTokens, pairs: pairs.length } };
}

export async function rerank(
  served: ServedModel,
  body: RerankRequest,
  call: CallContext,
  /** What the client called its documents, for error messages (TEI's requests say `texts`). */
  documentsField = "documents",
): Promise<{ response: RerankResponse; account: ScoringAccount }> {
  checkModel(served, body.model);
  const texts = body.documents.map(documentText);
  const specs = texts.map((document, i) => ({ query: body.query, document, field: `${documentsField}[${i}]` }));
  const { scores, account } = await scorePairs(served, specs, body, call);
  const order = scores.map((score, index) => ({ index, score }));
  // Stable: equal scores keep ascending original index.
  order.sort((a, b) => b.score - a.score || a.index - b.index);
  const topN = body.top_n ?? 0;
  const kept = topN > 0 && topN < order.length ? order.slice(0, topN) : order;
  const withDocuments = body.return_documents ?? true;
  return {
    response: {
      id: `rerank-${call.requestId}`,
      model: served.servedModelName,
      usage: { prompt_tokens: account.promptTokens, total_tokens: account.promptTokens },
      results: kept.map(({ index, score }) =>
        withDocuments
          ? { index, document: { text: texts[index] }, relevance_score: score }
          : { index, relevance_score: score },
      ),
    },
    account,
  };
}

/** The two sides of a score request, from whichever of vLLM's field pairs the client used. */
function scoreSides(body: ScoreRequest): { left: ScoreSide; right: ScoreSide; names: [string, string] } {
  const forms: Array<[keyof ScoreRequest, keyof ScoreRequest]> = [
    ["queries", "documents"],
    ["text_1", "text_2"],
    ["data_1", "data_2"],
  ];
  const present = forms.filter(([a, b]) => isSet(body[a]) || isSet(body[b]));
  if (present.length === 0) {
    throw new BadRequestError("Send the pairs as `queries` and `documents` (or `text_1`/`text_2`, `data_1`/`data_2`).", "queries");
  }
  if (present.length > 1) {
    throw new BadRequestError(
      `Send one form of input, not ${present.map(([a, b]) => `${String(a)}/${String(b)}`).join(" and ")}.`,
      String(present[1][0]),
    );
  }
  const [a, b] = present[0];
  for (const name of [a, b]) {
    if (!isSet(body[name])) throw new BadRequestError(`\`${String(name)}\` is required with \`${String(name === a ? b : a)}\`.`, String(name));
  }
  return { left: body[a] as ScoreSide, right: body[b] as ScoreSide, names: [String(a), String(b)] };
}

const isSet = (value: unknown): boolean => value !== undefined && value !== null;

export async function score(
  served: ServedModel,
  body: ScoreRequest,
  call: CallContext,
): Promise<{ response: ScoreResponse; account: ScoringAccount }> {
  checkModel(served, body.model);
  const { left, right, names } = scoreSides(body);
  const queries = (Array.isArray(left) ? left : [left]).map(documentText);
  const documents = (Array.isArray(right) ? right : [right]).map(documentText);
  if (queries.length === 0) throw new BadRequestError(`\`${names[0]}\` must not be empty.`, names[0]);
  if (documents.length === 0) throw new BadRequestError(`\`${names[1]}\` must not be empty.`, names[1]);
  if (queries.length > 1 && queries.length !== documents.length) {
    throw new BadRequestError(
      `Input lengths must be either 1:1, 1:N or N:N (got ${queries.length} ${names[0]} and ${documents.length} ${names[1]}).`,
      names[0],
    );
  }
  const specs = documents.map((document, i) => ({
    query: queries.length === 1 ? queries[0] : queries[i],
    document,
    field: `${names[1]}[${i}]`,
  }));
  const { scores, account } = await scorePairs(served, specs, body, call);
  return {
    response: {
      id: `score-${call.requestId}`,
      object: "list",
      created: Math.floor(Date.now() / 1000),
      model: served.servedModelName,
      data: scores.map((s, index) => ({ index, object: "score", score: s })),
      usage: { prompt_tokens: account.promptTokens, total_tokens: account.promptTokens },
    },
    account,
  };
}

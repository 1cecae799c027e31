/**
 * The client libraries people already use, unmodified, against the real CLI serving the tiny Gemma
 * fixture with an API key: Cohere's SDK (v2 client on /v2/rerank, v1 client on /v1/rerank),
 * LangChain's CohereRerank, Jina's and TEI's wire requests. Each answer is checked against the
 * server's own vLLM-shaped answer for the same documents, and every request the SDKs made is
 * checked to have gone to the server and nowhere else.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { CohereClient, CohereClientV2, CohereError } from "cohere-ai";
import { CohereRerank } from "@langchain/cohere";
import { Document } from "@langchain/core/documents";
import { buildTinyGemma } from "../support/tiny-gemma.js";
import { postJson, rerankScores, startCliServer, type CliServer } from "../support/cli-server.js";
import { loopbackFetch, quietSdkEnvironment, type LoopbackFetch } from "./loopback.js";

/** The CohereClient class of the cohere-ai that @langchain/cohere resolves (its own 7.x). */
type LangchainCohereClient = NonNullable<NonNullable<ConstructorParameters<typeof CohereRerank>[0]>["client"]>;
const LangchainCohereClient = (
  createRequire(import.meta.resolve("@langchain/cohere"))("cohere-ai") as { CohereClient: new (options: ConstructorParameters<typeof CohereClient>[0]) => LangchainCohereClient }
).CohereClient;

const MODEL = "BAAI/bge-reranker-v2-gemma";
const KEY = "sdk-test-key";

const query = "What is the capital of China?";
const documents = [
  "The capital of China is Beijing.",
  "Gravity is a force that attracts two bodies toward each other.",
  "Paris is the capital of France.",
  "Beijing has been China's capital for most of the last eight centuries.",
  "Photosynthesis converts light energy into chemical energy.",
];

let server: CliServer;
let net: LoopbackFetch;
/** The server's own ranking of `documents` for `query`: index → activated score. */
let reference: Map<number, number>;

before(async () => {
  quietSdkEnvironment();
  net = loopbackFetch();
  // Anything in this process that fetches goes through the guard, SDK internals included.
  globalThis.fetch = net.fetch;
  const model = await buildTinyGemma();
  server = await startCliServer([model.path, "--served-model-name", MODEL, "--api-key", KEY]);
  reference = await rerankScores(server.url, { model: MODEL, query, documents }, { authorization: `Bearer ${KEY}` });
});
after(async () => {
  await server?.stop();
});

/**
 * A client's ranking against the server's own: best first, scores equal to the reference's within
 * llama.cpp's batch-to-batch wobble (~1e-4), and nothing clearly better left out.
 */
function assertRanking(results: Array<{ index: number; relevanceScore: number }>, topN: number): void {
  const tolerance = 2e-3;
  assert.equal(results.length, Math.min(topN, documents.length));
  results.forEach((r, i) => {
    if (i > 0) assert.ok(results[i - 1].relevanceScore >= r.relevanceScore, "best first");
    const expected = reference.get(r.index) as number;
    assert.ok(Math.abs(r.relevanceScore - expected) <= tolerance, `document ${r.index}: ${r.relevanceScore} vs ${expected}`);
    assert.ok(r.relevanceScore >= 0 && r.relevanceScore <= 1, "Cohere's clients are promised scores in [0, 1]");
  });
  const lowest = Math.min(...results.map((r) => r.relevanceScore));
  for (const [index, score] of reference) {
    if (!results.some((r) => r.index === index)) assert.ok(score <= lowest + tolerance, `document ${index} was left out`);
  }
}

/** The requests made since `from`, as "METHOD /path". */
const madeSince = (from: number) => net.requests.slice(from).map((r) => `${r.method} ${r.url.pathname}`);

test("cohere-ai CohereClientV2.rerank calls /v2/rerank with the key and reads the answer", async () => {
  const cohere = new CohereClientV2({ token: KEY, baseUrl: server.url, maxRetries: 0 });
  const from = net.requests.length;
  const response = await cohere.rerank({ model: MODEL, query, documents, topN: 3 });
  assert.deepEqual(madeSince(from), ["POST /v2/rerank"]);
  assert.equal(net.requests[from].headers.get("authorization"), `Bearer ${KEY}`);
  assert.match(response.id ?? "", /^rerank-/);
  assertRanking(response.results, 3);

  // Cohere's own max_tokens_per_doc (vLLM has the same field), and no topN: every document.
  const all = await cohere.rerank({ model: MODEL, query, documents, maxTokensPerDoc: 4096 });
  assertRanking(all.results, documents.length);
  assert.match(net.requests.at(-1)?.body ?? "", /"max_tokens_per_doc":4096/);
});

test("cohere-ai's v1 CohereClient.rerank honours returnDocuments, with string and {text} documents", async () => {
  const cohere = new CohereClient({ token: KEY, baseUrl: server.url, maxRetries: 0 });
  const from = net.requests.length;
  const withDocs = await cohere.rerank({ model: MODEL, query, documents, topN: 2, returnDocuments: true });
  assert.deepEqual(madeSince(from), ["POST /v1/rerank"]);
  assert.match(net.requests[from].body ?? "", /"return_documents":true/);
  assertRanking(withDocs.results, 2);
  for (const r of withDocs.results) assert.equal(r.document?.text, documents[r.index]);

  const bare = await cohere.rerank({ model: MODEL, query, documents: documents.map((text) => ({ text })), returnDocuments: false });
  assertRanking(bare.results, documents.length);
  for (const r of bare.results) assert.equal(r.document, undefined, "returnDocuments: false leaves documents out");
});

test("cohere-ai surfaces the server's errors: a wrong key is 401, another model's name 404, with the message", async () => {
  const wrongKey = new CohereClientV2({ token: "not-the-key", baseUrl: server.url, maxRetries: 0 });
  await assert.rejects(wrongKey.rerank({ model: MODEL, query, documents }), (error: unknown) => {
    assert.ok(error instanceof CohereError);
    assert.equal(error.statusCode, 401);
    assert.match(JSON.stringify(error.body), /AuthenticationError/);
    return true;
  });
  const cohere = new CohereClientV2({ token: KEY, baseUrl: server.url, maxRetries: 0 });
  await assert.rejects(cohere.rerank({ model: "rerank-v3.5", query, documents }), (error: unknown) => {
    assert.ok(error instanceof CohereError);
    assert.equal(error.statusCode, 404);
    assert.match(JSON.stringify(error.body), /rerank-v3\.5.*does not exist/);
    return true;
  });
});

test("@langchain/cohere CohereRerank: compressDocuments keeps the best topN with their scores, rerank ranks strings", async () => {
  // LangChain builds its own CohereClient from an API key alone (Cohere's cloud); pointing it at
  // rerankd means handing it a client made with a base URL, which its `client` option takes.
  // The client is made from the cohere-ai that @langchain/cohere itself depends on (7.x, nested
  // under it), as a LangChain user's would be, not from this project's cohere-ai 8.
  const client = new LangchainCohereClient({ token: KEY, baseUrl: server.url, maxRetries: 0 });
  const reranker = new CohereRerank({ client, model: MODEL, topN: 3 });
  const docs = documents.map((pageContent, i) => new Document({ pageContent, metadata: { source: `doc-${i}` } }));
  const from = net.requests.length;
  const kept = await reranker.compressDocuments(docs, query);
  assert.deepEqual(madeSince(from), ["POST /v1/rerank"]);
  assert.equal(kept.length, 3);
  const asResults = kept.map((d) => ({
    index: documents.indexOf(d.pageContent),
    relevanceScore: d.metadata.relevanceScore as number,
  }));
  assertRanking(asResults, 3);
  for (const d of kept) assert.equal(d.metadata.source, `doc-${documents.indexOf(d.pageContent)}`, "metadata survives");

  const ranked = await reranker.rerank(documents, query, { topN: documents.length });
  assertRanking(ranked, documents.length);
});

test("Jina's rerank request (its API's fields, sent as its clients send it) is answered in Jina's shape", async () => {
  // Jina's API takes the same body as vLLM's, with return_documents, and answers
  // {model, usage: {total_tokens}, results: [{index, relevance_score, document?}]}.
  const { status, json } = await postJson(
    `${server.url}/v1/rerank`,
    { model: MODEL, query, documents, top_n: 2, return_documents: false },
    { authorization: `Bearer ${KEY}`, accept: "application/json" },
  );
  assert.equal(status, 200, JSON.stringify(json));
  const answer = json as { model: string; usage: { total_tokens: number }; results: Array<{ index: number; relevance_score: number; document?: unknown }> };
  assert.equal(answer.model, MODEL);
  assert.ok(answer.usage.total_tokens > 0);
  assertRanking(
    answer.results.map((r) => ({ index: r.index, relevanceScore: r.relevance_score })),
    2,
  );
  assert.ok(answer.results.every((r) => r.document === undefined));
});

test("TEI's rerank request on the real model: same scores as vLLM's shape, raw and activated", async () => {
  const headers = { authorization: `Bearer ${KEY}` };
  const activated = await postJson(`${server.url}/rerank`, { query, texts: documents, return_text: true }, headers);
  assert.equal(activated.status, 200, JSON.stringify(activated.json));
  const results = activated.json as Array<{ index: number; score: number; text: string }>;
  assertRanking(
    results.map((r) => ({ index: r.index, relevanceScore: r.score })),
    documents.length,
  );
  for (const r of results) assert.equal(r.text, documents[r.index]);

  const raw = await postJson(`${server.url}/rerank`, { query, texts: documents, raw_scores: true }, headers);
  for (const r of raw.json as Array<{ index: number; score: number }>) {
    assert.ok(Math.abs(1 / (1 + Math.exp(-r.score)) - (reference.get(r.index) as number)) < 2e-3, "raw_scores is the logit");
  }
});

test("no SDK reached for any host but the server", () => {
  assert.deepEqual(net.refused, []);
  assert.ok(net.requests.length > 0);
  for (const r of net.requests) assert.equal(r.url.origin, server.url);
});

/**
 * The served scores are the model's: raw scores from the real CLI over HTTP equal a float64
 * reference forward of Hugging Face's Gemma on FlagEmbedding's pair tokens, for pairs of varied
 * length and script, including ones that must be truncated.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { buildTinyGemma, type TinyGemma } from "../support/tiny-gemma.js";
import { startCliServer, postJson, type CliServer } from "../support/cli-server.js";
import { referencePairIds, referenceRawScore, scoreTolerance } from "../support/reference-pairs.js";

const longText = Array.from({ length: 160 }, (_, i) => `Sentence ${i} talks about the capital of China, Beijing, and gravity.`).join(" ");

const PAIRS: Array<[string, string]> = [
  ["What is the capital of China?", "The capital of China is Beijing."],
  ["What is the capital of China?", "Paris is the capital of France."],
  ["Explain gravity", "Gravity is a force that attracts two bodies toward each other."],
  ["Où est la bibliothèque ?", "La bibliothèque est à côté de l'église, près du café."],
  ["Ärger über Größe", "Straße, Fußgänger und Übermut: ÄÖÜ äöü ß."],
  ["北京是中国的首都吗？", "北京是中华人民共和国的首都。"],
  ["東京の天気", "今日は晴れです。明日は雨でしょう。"],
  ["서울은 어디에 있나요?", "서울은 한국의 수도입니다."],
  ["emoji 🚀", "Launch 🚀🌕 and smile 😀👍🏽 — done ✅"],
  ["What is vLLM?", ""],
  ["What is vLLM?", "   "],
  ["", "An empty query still scores."],
  ["Tabs\tand\nnewlines", "line one\nline two\n\n\tindented"],
  ["digits 1234567890", "Pi is 3.14159265358979 and e is 2.718281828."],
  ["Yes or No?", "Yes. No. Yes! A: B: A: B:"],
  ["mixed 中文 English français", "Ελληνικά русский עברית العربية हिन्दी"],
  ["long query " + "word ".repeat(120), "short passage"],
  ["What is semantic search?", longText],
  [longText, "Semantic search retrieves results based on meaning."],
  ["punctuation!?", "«quotes» „German“ ‘single’ — dashes – and … ellipsis"],
  ["zero-width", "a\u200bb\u200dc\ufeffd"],
  ["How does reranking improve RAG answers?", "Reranking improves RAG by rescoring first-stage retrieval candidates."],
];

let model: TinyGemma;
let server: CliServer;

before(async () => {
  model = await buildTinyGemma();
  server = await startCliServer([model.path, "--served-model-name", "BAAI/bge-reranker-v2-gemma"]);
});
after(async () => {
  await server?.stop();
});

test("raw scores match the float64 reference forward on 22 varied pairs (N:N /v1/score)", async () => {
  const { status, json } = await postJson(`${server.url}/v1/score`, {
    queries: PAIRS.map((p) => p[0]),
    documents: PAIRS.map((p) => p[1]),
    use_activation: false,
  });
  assert.equal(status, 200, JSON.stringify(json));
  const body = json as { data: Array<{ index: number; score: number }>; usage: { prompt_tokens: number; total_tokens: number } };
  let worst = 0;
  PAIRS.forEach(([query, passage], i) => {
    const reference = referenceRawScore(model, query, passage);
    const served = body.data[i].score;
    assert.equal(body.data[i].index, i);
    const error = Math.abs(served - reference);
    worst = Math.max(worst, error);
    assert.ok(error <= scoreTolerance(reference), `pair ${i}: served ${served}, reference ${reference}, |error| ${error}`);
  });
  const expectedTokens = PAIRS.reduce((n, [q, p]) => n + referencePairIds(model, q, p).length, 0);
  assert.equal(body.usage.prompt_tokens, expectedTokens, "usage counts every token of every pair");
  assert.equal(body.usage.total_tokens, expectedTokens);
  // The long pairs really were truncated to FlagEmbedding's limits.
  assert.ok(referencePairIds(model, "What is semantic search?", longText).length < 1024 + 2 * 60);
  console.log(`max |served - reference| over ${PAIRS.length} pairs: ${worst.toExponential(2)}`);
});

test("truncate_prompt_tokens lowers max_length for the request, as the reference does", async () => {
  const pairs = PAIRS.slice(16, 19);
  const { status, json } = await postJson(`${server.url}/v1/score`, {
    queries: pairs.map((p) => p[0]),
    documents: pairs.map((p) => p[1]),
    use_activation: false,
    truncate_prompt_tokens: 48,
  });
  assert.equal(status, 200, JSON.stringify(json));
  const data = (json as { data: Array<{ score: number }> }).data;
  pairs.forEach(([q, p], i) => {
    const reference = referenceRawScore(model, q, p, 48);
    assert.ok(Math.abs(data[i].score - reference) <= scoreTolerance(reference), `pair ${i}: ${data[i].score} vs ${reference}`);
  });
});

test("rerank scores are the same numbers, activated by sigmoid, sorted", async () => {
  const query = "What is the capital of China?";
  const documents = PAIRS.slice(0, 8).map((p) => p[1]);
  const { status, json } = await postJson(`${server.url}/v1/rerank`, { query, documents });
  assert.equal(status, 200, JSON.stringify(json));
  const results = (json as { results: Array<{ index: number; relevance_score: number }> }).results;
  assert.equal(results.length, documents.length);
  for (const r of results) {
    const expected = 1 / (1 + Math.exp(-referenceRawScore(model, query, documents[r.index])));
    assert.ok(Math.abs(r.relevance_score - expected) < 2e-3, `document ${r.index}: ${r.relevance_score} vs ${expected}`);
  }
  for (let i = 1; i < results.length; i++) assert.ok(results[i - 1].relevance_score >= results[i].relevance_score);
});

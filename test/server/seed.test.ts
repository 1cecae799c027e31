/**
 * Every request of the seed API document, run verbatim with curl against the real CLI serving the
 * tiny Gemma fixture as BAAI/bge-reranker-v2-gemma, with an API key: the shapes and semantics of
 * each answer are checked, and its scores against the float64 reference.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { buildTinyGemma, type TinyGemma } from "../support/tiny-gemma.js";
import { startCliServer, type CliServer } from "../support/cli-server.js";
import { documentText, runSeedCurl, seedBody, seedCommands } from "../support/seed-requests.js";
import { referencePairIds, referenceRawScore, scoreTolerance } from "../support/reference-pairs.js";

const MODEL = "BAAI/bge-reranker-v2-gemma";
const KEY = "seed-test-key";

let model: TinyGemma;
let server: CliServer;

before(async () => {
  model = await buildTinyGemma();
  server = await startCliServer([model.path, "--served-model-name", MODEL, "--api-key", KEY]);
});
after(async () => {
  await server?.stop();
});

function runCurl(command: string, key = KEY): { status: number; body: Record<string, unknown> } {
  return runSeedCurl(command, { baseUrl: server.url, model: MODEL, key });
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

test("the seed holds ten requests: eight reranks and two score calls", () => {
  const commands = seedCommands();
  assert.equal(commands.length, 10);
  assert.equal(commands.filter((c) => c.includes("/rerank")).length, 8);
});

for (const [n, command] of seedCommands().entries()) {
  const body = seedBody(command, MODEL);
  const route = command.includes("/score") ? "score" : "rerank";
  test(`seed request ${n + 1} (${route}: ${JSON.stringify(body.query ?? body.queries).slice(0, 50)}) works verbatim`, () => {
    const { status, body: answer } = runCurl(command);
    assert.equal(status, 200, JSON.stringify(answer));
    assert.equal(answer.model, MODEL);
    const activated = body.use_activation !== false;
    if (route === "rerank") {
      const documents = (body.documents as unknown[]).map(documentText);
      const query = body.query as string;
      assert.match(String(answer.id), /^rerank-/);
      const results = answer.results as Array<{ index: number; relevance_score: number; document: { text: string } }>;
      const topN = (body.top_n as number | undefined) ?? documents.length;
      assert.equal(results.length, Math.min(topN, documents.length));
      assert.equal(new Set(results.map((r) => r.index)).size, results.length);
      const expected = documents.map((d, index) => {
        const raw = referenceRawScore(model, query, d);
        return { index, raw, score: activated ? sigmoid(raw) : raw };
      });
      const order = [...expected].sort((a, b) => b.score - a.score || a.index - b.index);
      results.forEach((r, i) => {
        assert.deepEqual(r.document, { text: documents[r.index] });
        const e = expected[r.index];
        const tolerance = activated ? scoreTolerance(e.raw) / 4 : scoreTolerance(e.raw);
        assert.ok(Math.abs(r.relevance_score - e.score) <= tolerance, `index ${r.index}: ${r.relevance_score} vs ${e.score}`);
        if (activated) assert.ok(r.relevance_score >= 0 && r.relevance_score <= 1);
        if (i > 0) assert.ok(results[i - 1].relevance_score >= r.relevance_score, "sorted by relevance");
        // The reference's order agrees wherever the reference's scores are not within tolerance of each other.
        if (Math.abs(order[i].score - r.relevance_score) > 2 * tolerance) assert.equal(r.index, order[i].index);
      });
      const tokens = documents.reduce((sum, d) => sum + referencePairIds(model, query, d).length, 0);
      assert.deepEqual(answer.usage, { prompt_tokens: tokens, total_tokens: tokens });
    } else {
      const queries = body.queries as string[];
      const documents = body.documents as string[];
      assert.match(String(answer.id), /^score-/);
      assert.equal(answer.object, "list");
      const data = answer.data as Array<{ index: number; object: string; score: number }>;
      assert.equal(data.length, documents.length);
      data.forEach((d, i) => {
        assert.equal(d.index, i);
        assert.equal(d.object, "score");
        const raw = referenceRawScore(model, queries[i], documents[i]);
        assert.ok(Math.abs(d.score - sigmoid(raw)) <= scoreTolerance(raw) / 4, `pair ${i}: ${d.score} vs ${sigmoid(raw)}`);
      });
      const tokens = documents.reduce((sum, d, i) => sum + referencePairIds(model, queries[i], d).length, 0);
      assert.deepEqual(answer.usage, { prompt_tokens: tokens, total_tokens: tokens });
    }
  });
}

test("every seed request without the key, or with a wrong one, is a 401", () => {
  for (const command of seedCommands()) {
    assert.equal(runCurl(command, "wrong-key").status, 401);
    assert.equal(runCurl(command.replace(/-H "Authorization: Bearer \$HEXGRID_API_KEY" \\\n/, ""), "").status, 401);
  }
});

test("the raw score mode request returns the logits whose sigmoid the activated request returns", () => {
  const commands = seedCommands();
  const raw = commands.find((c) => c.includes('"use_activation": false')) as string;
  const activated = commands.find((c) => c.includes('"use_activation": true') && c.includes("semantic search")) as string;
  const rawResults = runCurl(raw).body.results as Array<{ index: number; relevance_score: number }>;
  const actResults = runCurl(activated).body.results as Array<{ index: number; relevance_score: number }>;
  assert.deepEqual(rawResults.map((r) => r.index), actResults.map((r) => r.index));
  // Not bit-equal: the second request reuses the first one's query prefix in the KV cache, and
  // llama.cpp's kernels differ by batch shape; both must still be within the reference tolerance.
  rawResults.forEach((r, i) => {
    const tolerance = scoreTolerance(r.relevance_score) / 2;
    assert.ok(Math.abs(sigmoid(r.relevance_score) - actResults[i].relevance_score) <= tolerance, `document ${r.index}`);
  });
});

test("score 1:N equals rerank for the same pairs", () => {
  const commands = seedCommands();
  const oneToMany = commands.find((c) => c.includes("What is vLLM?")) as string;
  const body = seedBody(oneToMany, MODEL);
  const score = runCurl(oneToMany).body.data as Array<{ score: number }>;
  const rerankCommand = `curl -X POST "$BGE_RERANK_BASE_URL/rerank" -H "Authorization: Bearer $HEXGRID_API_KEY" -H "Content-Type: application/json" -d '${JSON.stringify({ model: MODEL, query: (body.queries as string[])[0], documents: body.documents })}'`;
  const rerank = runCurl(rerankCommand).body.results as Array<{ index: number; relevance_score: number }>;
  // Equal up to llama.cpp's batch-shape differences (see above), far inside the reference tolerance.
  for (const r of rerank) assert.ok(Math.abs(r.relevance_score - score[r.index].score) < 1e-3, `document ${r.index}`);
});

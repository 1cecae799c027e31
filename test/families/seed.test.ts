/**
 * The seed API document's requests, run verbatim with curl against the real CLI serving each
 * added family's tiny random-weight fixture under that family's model id, with an API key: the
 * answers' shapes and semantics, their scores against the family's float64 reference, and the
 * usage counts against the reference's pair tokens. (test/server/seed.test.ts does the same for
 * the Gemma family.)
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { postJson, startCliServer, type CliServer } from "../support/cli-server.js";
import { qwen3PairIds, qwen3RawScore, qwen3Tolerance } from "../support/reference-qwen3.js";
import { documentText, runSeedCurl, seedBody, seedCommands } from "../support/seed-requests.js";
import { xlmrForward, xlmrPairIds, xlmrTokenizeAll, xlmrTolerance } from "../support/reference-xlmr.js";
import { buildTinyQwen3 } from "../support/tiny-qwen3.js";
import { buildTinyXlmr, spmUnavailableReason } from "../support/tiny-xlmr.js";

const KEY = "family-seed-key";
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** What a family's reference says about a pair. */
interface Reference {
  pairIds(query: string, document: string): number[];
  raw(query: string, document: string): number;
  tolerance(raw: number): number;
  /** For families that take an instruction: the raw score with one. */
  rawWithInstruction?(query: string, document: string, instruction: string): number;
}

interface FamilyCase {
  family: string;
  modelId: string;
  skip: string | undefined;
  /** Builds the fixture; returns the CLI's model arguments and the reference. */
  setUp(texts: string[]): Promise<{ args: string[]; reference: Reference }>;
}

/** Every query and document text of the seed. */
function seedTexts(model: string): string[] {
  const texts = new Set<string>();
  for (const command of seedCommands()) {
    const body = seedBody(command, model);
    for (const value of [body.query, body.queries, body.documents].flat()) if (value !== undefined) texts.add(documentText(value));
  }
  return [...texts];
}

const CASES: FamilyCase[] = [
  {
    family: "xlm-roberta-cross-encoder",
    modelId: "BAAI/bge-reranker-v2-m3",
    skip: spmUnavailableReason(),
    async setUp(texts) {
      const model = await buildTinyXlmr();
      const ids = new Map(xlmrTokenizeAll(model.spmModelPath, texts).map((t, i) => [texts[i], t]));
      const tok = (text: string) => ids.get(text) ?? assert.fail(`no reference ids for ${JSON.stringify(text)}`);
      const pairIds = (q: string, d: string) => xlmrPairIds(tok(q), tok(d));
      return {
        args: [model.path],
        reference: { pairIds, raw: (q, d) => xlmrForward(model.config, model.weights, pairIds(q, d)), tolerance: xlmrTolerance },
      };
    },
  },
  {
    family: "qwen3-reranker",
    modelId: "Qwen/Qwen3-Reranker-0.6B",
    skip: undefined,
    async setUp() {
      const model = await buildTinyQwen3({ name: "tiny-Qwen3-Reranker-fixture" });
      const score = (ids: number[]) => qwen3RawScore(model.config, model.weights, ids, model.yes, model.no);
      return {
        args: [model.path],
        reference: {
          pairIds: (q, d) => qwen3PairIds(model.tokenizer, q, d),
          raw: (q, d) => score(qwen3PairIds(model.tokenizer, q, d)),
          rawWithInstruction: (q, d, instruction) => score(qwen3PairIds(model.tokenizer, q, d, 8192, instruction)),
          tolerance: qwen3Tolerance,
        },
      };
    },
  },
];

for (const c of CASES) {
  describe(`${c.family} serving the seed's requests as ${c.modelId}`, { skip: c.skip }, () => {
    let server: CliServer;
    let reference: Reference;
    const env = () => ({ baseUrl: server.url, model: c.modelId, key: KEY });

    before(async () => {
      const fixture = await c.setUp(seedTexts(c.modelId));
      reference = fixture.reference;
      server = await startCliServer([...fixture.args, "--served-model-name", c.modelId, "--api-key", KEY]);
      assert.match(server.output(), new RegExp(`model ready: .*\\(${c.family},`));
    });
    after(async () => {
      await server?.stop();
    });

    for (const [n, command] of seedCommands().entries()) {
      const body = seedBody(command, c.modelId);
      const route = command.includes("/score") ? "score" : "rerank";
      test(`seed request ${n + 1} (${route}: ${JSON.stringify(body.query ?? body.queries).slice(0, 40)})`, () => {
        const { status, body: answer } = runSeedCurl(command, env());
        assert.equal(status, 200, JSON.stringify(answer));
        assert.equal(answer.model, c.modelId);
        const activated = body.use_activation !== false;
        const pairs: Array<[string, string]> =
          route === "rerank"
            ? (body.documents as unknown[]).map((d) => [body.query as string, documentText(d)])
            : (body.documents as string[]).map((d, i) => [(body.queries as string[])[i], d]);
        const expected = pairs.map(([q, d], index) => {
          const raw = reference.raw(q, d);
          return { index, raw, score: activated ? sigmoid(raw) : raw };
        });
        // An activated score is the sigmoid of the raw one: its error shrinks with sigmoid's slope (≤ 1/4).
        const tolerance = (raw: number) => (activated ? reference.tolerance(raw) / 4 : reference.tolerance(raw));
        if (route === "rerank") {
          assert.match(String(answer.id), /^rerank-/);
          const results = answer.results as Array<{ index: number; relevance_score: number; document: { text: string } }>;
          const topN = (body.top_n as number | undefined) ?? pairs.length;
          assert.equal(results.length, Math.min(topN, pairs.length));
          assert.equal(new Set(results.map((r) => r.index)).size, results.length);
          const order = [...expected].sort((a, b) => b.score - a.score || a.index - b.index);
          results.forEach((r, i) => {
            assert.deepEqual(r.document, { text: pairs[r.index][1] });
            const e = expected[r.index];
            assert.ok(Math.abs(r.relevance_score - e.score) <= tolerance(e.raw), `index ${r.index}: ${r.relevance_score} vs ${e.score}`);
            if (activated) assert.ok(r.relevance_score >= 0 && r.relevance_score <= 1);
            if (i > 0) assert.ok(results[i - 1].relevance_score >= r.relevance_score, "sorted by relevance");
            if (Math.abs(order[i].score - r.relevance_score) > 2 * tolerance(e.raw)) assert.equal(r.index, order[i].index);
          });
        } else {
          assert.match(String(answer.id), /^score-/);
          assert.equal(answer.object, "list");
          const data = answer.data as Array<{ index: number; object: string; score: number }>;
          assert.equal(data.length, pairs.length);
          data.forEach((d, i) => {
            assert.equal(d.index, i);
            assert.equal(d.object, "score");
            assert.ok(Math.abs(d.score - expected[i].score) <= tolerance(expected[i].raw), `pair ${i}: ${d.score} vs ${expected[i].score}`);
          });
        }
        const tokens = pairs.reduce((sum, [q, d]) => sum + reference.pairIds(q, d).length, 0);
        assert.deepEqual(answer.usage, { prompt_tokens: tokens, total_tokens: tokens });
      });
    }

    test("an `instruction` field is used by instruction-following families and refused by the others", async () => {
      const query = "What is the capital of China?";
      const documents = ["The capital of China is Beijing.", "Paris is the capital of France."];
      const instruction = "Given a question, find the passage that names the city";
      const { status, json } = await postJson(
        `${server.url}/v1/score`,
        { model: c.modelId, queries: query, documents, instruction, use_activation: false },
        { authorization: `Bearer ${KEY}` },
      );
      if (!reference.rawWithInstruction) {
        assert.equal(status, 400, JSON.stringify(json));
        assert.equal((json as { error: { param: string } }).error.param, "instruction");
        return;
      }
      assert.equal(status, 200, JSON.stringify(json));
      const data = (json as { data: Array<{ score: number }> }).data;
      documents.forEach((d, i) => {
        const expected = reference.rawWithInstruction?.(query, d, instruction) ?? NaN;
        assert.ok(Math.abs(data[i].score - expected) <= reference.tolerance(expected), `document ${i}: ${data[i].score} vs ${expected}`);
      });
      // Told apart from the default instruction's scores: the instruction was used, not ignored.
      const shift = Math.max(...documents.map((d, i) => Math.abs(data[i].score - reference.raw(query, d)) / reference.tolerance(reference.raw(query, d))));
      assert.ok(shift > 3, `the instruction moved no score beyond the tolerance (${shift.toFixed(2)} tolerances)`);
    });

    test("every seed request without the key, or with a wrong one, is a 401", () => {
      for (const command of seedCommands()) {
        assert.equal(runSeedCurl(command, { ...env(), key: "wrong-key" }).status, 401);
        assert.equal(runSeedCurl(command.replace(/-H "Authorization: Bearer \$HEXGRID_API_KEY" \\\n/, ""), { ...env(), key: "" }).status, 401);
      }
    });
  });
}

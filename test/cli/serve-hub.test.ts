/**
 * `rerankd serve` with no model argument serves BAAI/bge-reranker-v2-gemma from the Hub: here a
 * local server speaking the Hub's API (HF_ENDPOINT) holds a tiny Gemma checkpoint with a real
 * SentencePiece tokenizer. The first start downloads and converts; the second reuses both without
 * a single file request; HF_HUB_OFFLINE=1 serves from the cache. Scores are checked against the
 * float64 reference run on the safetensors weights, with ids from spm_encode.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { FakeHub } from "../support/fake-hub.js";
import { startCliServer, postJson } from "../support/cli-server.js";
import { spmEncodeText, spmUnavailableReason } from "../support/hf-checkpoint.js";
import { makeFixture, referenceOf, writeVariant, type Fixture } from "../models/convert/helpers.js";
import { referenceForward } from "../support/reference-gemma.js";
import { flagPairIds, scoreTolerance } from "../support/reference-pairs.js";

const REPO = "BAAI/bge-reranker-v2-gemma";
const skip = spmUnavailableReason();

let fixture: Fixture;
let hub: FakeHub;
let work: string;
let checkpointDir: string;

before(async () => {
  if (skip) return;
  fixture = await makeFixture();
  work = await mkdtemp(join(tmpdir(), "rerankd-hub-"));
  checkpointDir = (await writeVariant(fixture, work, "f32")).dir;
  const files = [];
  for (const name of await readdir(checkpointDir)) {
    files.push({ path: name, content: await readFile(join(checkpointDir, name)), lfs: name.endsWith(".safetensors") || name === "tokenizer.model" });
  }
  // A PyTorch duplicate of the weights that must never be fetched.
  files.push({ path: "pytorch_model.bin", content: Buffer.alloc(4096, 7), lfs: true });
  hub = await FakeHub.start({ repos: [{ id: REPO, files }] });
});
after(async () => {
  await hub?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const env = () => ({ HF_ENDPOINT: hub.endpoint, HF_HOME: join(work, "hf-home"), HF_TOKEN: "", XDG_CACHE_HOME: join(work, "xdg") });

/** FlagEmbedding's pair ids, every piece tokenized by spm_encode itself. */
const pairIds = (query: string, passage: string): number[] =>
  flagPairIds((text) => spmEncodeText(fixture.tokenizerModel, text), 2, query, passage);

const PAIRS: Array<[string, string]> = [
  ["What is the capital of China?", "The capital of China is Beijing."],
  ["Explain gravity", "Gravity is a force that attracts two bodies toward each other."],
  ["Où est la gare ?", "La gare est près de l'église."],
  ["北京", "北京是中国的首都。"],
  ["emoji 🚀", "Launch 🚀 now"],
  ["digits 2024", "1234 5678"],
];

test("with no model argument, the first start downloads BAAI/bge-reranker-v2-gemma, converts it and serves exact scores", { skip }, async () => {
  const server = await startCliServer(["--dtype", "f32"], { env: env(), timeoutMs: 120_000 });
  try {
    assert.match(server.output(), /loading model BAAI\/bge-reranker-v2-gemma/);
    assert.match(server.output(), /converted to /);
    const fetched = hub.fileRequests().map((r) => r.path);
    assert.ok(!fetched.some((p) => p.endsWith(".bin")), `fetched ${fetched.join(", ")}`);
    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: Array<{ id: string; root: string }> };
    assert.equal(models.data[0].id, REPO);

    const { status, json } = await postJson(`${server.url}/v1/score`, {
      queries: PAIRS.map((p) => p[0]),
      documents: PAIRS.map((p) => p[1]),
      use_activation: false,
    });
    assert.equal(status, 200, JSON.stringify(json));
    const ref = referenceOf(fixture.config, fixture.weights);
    const data = (json as { data: Array<{ score: number }>; usage: { prompt_tokens: number } });
    let tokens = 0;
    PAIRS.forEach(([q, d], i) => {
      const ids = pairIds(q, d);
      tokens += ids.length;
      const expected = referenceForward(ref.config, ref.weights, ids).logitFor(spmEncodeText(fixture.tokenizerModel, "Yes")[0]);
      assert.ok(Math.abs(data.data[i].score - expected) <= scoreTolerance(expected), `pair ${i}: ${data.data[i].score} vs ${expected}`);
    });
    assert.equal(data.usage.prompt_tokens, tokens, "the converted tokenizer gives spm_encode's ids");
  } finally {
    await server.stop();
  }
});

test("a second start reuses the download and the conversion: no file request, no conversion", { skip }, async () => {
  hub.clearRequests();
  const server = await startCliServer(["--dtype", "f32"], { env: env(), timeoutMs: 60_000 });
  try {
    assert.match(server.output(), /using converted model /);
    assert.doesNotMatch(server.output(), /converted to /);
    assert.deepEqual(hub.fileRequests(), []);
  } finally {
    await server.stop();
  }
});

test("HF_HUB_OFFLINE=1 serves from the cache; without the model in the cache it fails with one clear error, exit 1", { skip }, async () => {
  hub.clearRequests();
  const server = await startCliServer(["--dtype", "f32"], { env: { ...env(), HF_HUB_OFFLINE: "1" } });
  await server.stop();
  assert.deepEqual(hub.requests, []);

  const run = promisify(execFile);
  const failure = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "other/missing-model", "--port", "0", "--host", "127.0.0.1"], {
    env: { ...process.env, ...env(), HF_HUB_OFFLINE: "1" },
  }).then(
    () => null,
    (error: { code: number; stderr: string; stdout: string }) => error,
  );
  assert.ok(failure, "the server must not start");
  assert.equal(failure.code, 1);
  assert.match(failure.stderr, /other\/missing-model/);
  assert.match(failure.stderr, /offline|HF_HUB_OFFLINE|cache/i);
  assert.doesNotMatch(failure.stderr, /\n\s+at /, "no stack trace");
});

test("the q8_0 default keeps the ranking and stays close to the reference", { skip }, async () => {
  const server = await startCliServer([], { env: env(), timeoutMs: 120_000 });
  try {
    const { json } = await postJson(`${server.url}/v1/score`, { queries: PAIRS.map((p) => p[0]), documents: PAIRS.map((p) => p[1]), use_activation: false });
    const ref = referenceOf(fixture.config, fixture.weights);
    const yes = spmEncodeText(fixture.tokenizerModel, "Yes")[0];
    (json as { data: Array<{ score: number }> }).data.forEach((d, i) => {
      const expected = referenceForward(ref.config, ref.weights, pairIds(...PAIRS[i])).logitFor(yes);
      // q8_0 rounds each weight to 1/254 of its block's largest value and llama.cpp quantizes the
      // activations to q8_0 too: the converter tests measured 2.1e-2 at most on this fixture.
      assert.ok(Math.abs(d.score - expected) <= 5e-2 + 2e-2 * Math.abs(expected), `pair ${i}: ${d.score} vs ${expected}`);
    });
  } finally {
    await server.stop();
  }
});

test("rerankd convert writes a GGUF from a checkpoint folder, and refuses bad arguments", { skip }, async () => {
  const run = promisify(execFile);
  const out = join(work, "converted.gguf");
  const { stdout } = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", "convert", checkpointDir, "-o", out, "--outtype", "f16"]);
  assert.match(stdout, /wrote .*converted\.gguf \(gemma, \d+ tensors, f16/);
  assert.ok(existsSync(out));
  const bad = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", "convert", checkpointDir, "-o", out, "--outtype", "q4"]).catch((e: { code: number; stderr: string }) => e);
  assert.equal((bad as { code: number }).code, 2);
  assert.match((bad as { stderr: string }).stderr, /--outtype must be one of f32, f16, q8_0/);
});

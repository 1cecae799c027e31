// HF XLMRobertaForSequenceClassification → GGUF: the converted file has the layout llama.cpp's own
// converter gives (the tiny fixture, written independently from convert_hf_to_gguf.py), llama.cpp
// tokenizes it as SentencePiece does, and its scores equal the float64 reference in f32, f16, q8_0
// and from a bf16 checkpoint. Broken checkpoints fail with a reason and leave no file.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { ConvertError, convertCheckpoint } from "../../../src/models/convert/index.js";
import { readGgufHeader } from "../../../src/models/gguf/reader.js";
import type { GgufValue } from "../../../src/models/gguf/types.js";
import { xlmRobertaFamily } from "../../../src/families/xlm-roberta/family.js";
import { loadLlamaRankBackend } from "../../../src/models/llama-rank-backend.js";
import { readModelFacts } from "../../../src/models/model-facts.js";
import { roundToBf16 } from "../../../src/models/safetensors/index.js";
import { postJson, startCliServer } from "../../support/cli-server.js";
import { tempDir } from "../../support/hf-checkpoint.js";
import { xlmrForward, xlmrPairIds, xlmrTokenizeAll, xlmrTolerance, type XlmrWeights } from "../../support/reference-xlmr.js";
import { buildTinyXlmr, spmUnavailableReason, storedXlmrWeights, writeHfXlmrCheckpoint, type TinyXlmr } from "../../support/tiny-xlmr.js";

const skip = spmUnavailableReason();
let tiny: TinyXlmr;
let root: string;
let checkpoint: string;

before(async () => {
  if (skip) return;
  tiny = await buildTinyXlmr();
  root = await tempDir("rerankd-convert-xlmr-");
  checkpoint = join(root, "bge-reranker-tiny");
  await writeHfXlmrCheckpoint(checkpoint, tiny);
});
after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const plain = (v: GgufValue): unknown => (v.type === "array" ? Array.from(v.value as ArrayLike<unknown>) : v.value);

test("the converted GGUF has llama.cpp's bert layout: the fixture's metadata, tensors, shapes and types", { skip }, async () => {
  const out = join(root, "f32.gguf");
  const result = await convertCheckpoint({ dir: checkpoint, out, outtype: "f32" });
  assert.equal(result.architecture, "bert");
  const [got, want] = await Promise.all([readGgufHeader(out), readGgufHeader(tiny.path)]);
  const skipKeys = new Set(["general.name", "general.type", "general.quantization_version"]);
  for (const [key, value] of Object.entries(want.metadata)) {
    if (skipKeys.has(key)) continue;
    assert.ok(key in got.metadata, `missing ${key}`);
    assert.deepEqual(plain(got.metadata[key]), plain(value), key);
    assert.equal(got.metadata[key].type, value.type, `${key} type`);
  }
  const extra = Object.keys(got.metadata).filter((k) => !(k in want.metadata) && !skipKeys.has(k));
  assert.deepEqual(extra, []);
  assert.deepEqual(
    got.tensors.map((t) => [t.name, t.shape, t.type]),
    want.tensors.map((t) => [t.name, t.shape, t.type]),
  );
});

async function scoresMatch(gguf: string, weights: XlmrWeights, tolerance = xlmrTolerance): Promise<number> {
  const backend = await loadLlamaRankBackend({ modelPath: gguf, device: "cpu", threads: 1, lanes: 1, laneCapacity: () => 512, batchTokens: 512 });
  try {
    const family = xlmRobertaFamily.bind(backend.tokenizer, await readModelFacts(gguf));
    const texts = ["What is the capital of China?", "The capital of China is Beijing.", "Paris is the capital of France.", "Ärger über Größe ﬁ", "北京是中国的首都。"];
    const ids = xlmrTokenizeAll(tiny.spmModelPath, texts);
    let worst = 0;
    for (let d = 1; d < texts.length; d++) {
      const limits = { maxLength: 512, maxTokensPerDoc: 0, truncation: "auto" as const };
      const pair = family.buildPair(family.prepareQuery(texts[0], limits), texts[d], limits);
      assert.deepEqual(pair.tokens, xlmrPairIds(ids[0], ids[d]), `tokens of pair ${d}`);
      const { values } = await backend.lanes[0].evaluate(pair.tokens, family.readout);
      const expected = xlmrForward(tiny.config, weights, pair.tokens);
      worst = Math.max(worst, Math.abs(values[0] - expected));
      assert.ok(Math.abs(values[0] - expected) <= tolerance(expected), `pair ${d}: ${values[0]} vs ${expected}`);
    }
    return worst;
  } finally {
    await backend.dispose();
  }
}

for (const outtype of ["f32", "f16", "q8_0"] as const) {
  test(`a ${outtype} conversion tokenizes like SentencePiece and scores like the reference on its ${outtype} weights`, { skip }, async () => {
    const out = join(root, `${outtype}.gguf`);
    const result = await convertCheckpoint({ dir: checkpoint, out, outtype });
    assert.deepEqual(result.warnings, []);
    // q8_0: llama.cpp also quantizes the activations to 8 bits per 32-value block in its q8_0 dot
    // products, which the reference (on the q8_0-rounded weights) does not model, and the fixture's
    // sharp random attention amplifies it (measured: up to 3 % of the score). A loose check that the
    // q8_0 storage converts right; f32 and f16 above and below check the numbers tightly.
    const tolerance = outtype === "q8_0" ? (r: number) => 1e-1 + 4e-2 * Math.abs(r) : xlmrTolerance;
    const worst = await scoresMatch(out, storedXlmrWeights(tiny.weights, outtype), tolerance);
    console.log(`${outtype}: max |llama.cpp - reference| ${worst.toExponential(2)}`);
  });
}

function mapWeights(w: XlmrWeights, f: (v: Float32Array) => Float32Array): XlmrWeights {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(w)) out[k] = v instanceof Float32Array ? f(v) : v;
  const layers = w.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, f(v)])));
  return { ...(out as unknown as XlmrWeights), layers: layers as unknown as XlmrWeights["layers"] };
}

test("a bf16 checkpoint converts to f32 exactly (the reference runs on the bf16 values)", { skip }, async () => {
  const dir = join(root, "bf16-ckpt");
  await writeHfXlmrCheckpoint(dir, tiny, { dtype: "bf16" });
  const out = join(root, "from-bf16.gguf");
  await convertCheckpoint({ dir, out, outtype: "f32" });
  await scoresMatch(out, mapWeights(tiny.weights, roundToBf16));
});

test("broken checkpoints fail with the reason and leave no file", { skip }, async () => {
  const cases: Array<[string, (dir: string) => Promise<void>, RegExp]> = [
    ["no sentencepiece.bpe.model", async (dir) => rm(join(dir, "sentencepiece.bpe.model")), /missing sentencepiece\.bpe\.model/],
    ["two labels", async (dir) => writeHfXlmrCheckpoint(dir, tiny, { configOverrides: { id2label: { "0": "a", "1": "b" } } }), /2 labels/],
    ["missing head", async (dir) => writeHfXlmrCheckpoint(dir, tiny, { omit: ["classifier.out_proj.weight"] }), /lacks tensor "classifier\.out_proj\.weight"/],
    ["wrong width", async (dir) => writeHfXlmrCheckpoint(dir, tiny, { configOverrides: { hidden_size: 32 } }), /has shape .* but config\.json implies/],
    ["relative positions", async (dir) => writeHfXlmrCheckpoint(dir, tiny, { configOverrides: { position_embedding_type: "relative_key" } }), /position_embedding_type/],
  ];
  for (const [label, breakIt, reason] of cases) {
    const dir = join(root, `broken-${label.replace(/\W+/g, "-")}`);
    await writeHfXlmrCheckpoint(dir, tiny);
    await breakIt(dir);
    const out = join(root, "broken.gguf");
    await assert.rejects(convertCheckpoint({ dir, out, outtype: "f16" }), (e: unknown) => e instanceof ConvertError && reason.test(e.message), label);
    assert.equal(existsSync(out), false, label);
  }
});

test("`rerankd serve <checkpoint folder>` converts it at start and serves it as an XLM-R cross-encoder", { skip }, async () => {
  const cache = join(root, "rerankd-cache");
  const server = await startCliServer([checkpoint, "--dtype", "f32"], { env: { RERANKD_CACHE: cache, HF_HUB_OFFLINE: "1" } });
  try {
    assert.match(server.output(), /model ready: .*\(xlm-roberta-cross-encoder, bert, max_length 512\)/);
    const texts = ["What is the capital of China?", "The capital of China is Beijing.", "Paris is the capital of France."];
    const { status, json } = await postJson(`${server.url}/v1/score`, { queries: texts[0], documents: texts.slice(1), use_activation: false });
    assert.equal(status, 200, JSON.stringify(json));
    const ids = xlmrTokenizeAll(tiny.spmModelPath, texts);
    (json as { data: Array<{ score: number }> }).data.forEach((d, i) => {
      const expected = xlmrForward(tiny.config, tiny.weights, xlmrPairIds(ids[0], ids[i + 1]));
      assert.ok(Math.abs(d.score - expected) <= xlmrTolerance(expected), `document ${i}: ${d.score} vs ${expected}`);
    });
  } finally {
    await server.stop();
  }
});

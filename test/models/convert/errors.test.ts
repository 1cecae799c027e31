// Conversion failures: clear errors, and nothing left at (or next to) the output path.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cp, readdir, readFile, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { truncateSync } from "node:fs";
import { join } from "node:path";
import { ConvertError, convertCheckpoint, type ConvertOptions } from "../../../src/models/convert/index.js";
import { readGgufHeader } from "../../../src/models/gguf/reader.js";
import { encodeSafetensors } from "../../../src/models/safetensors/index.js";
import { spmUnavailableReason, tempDir } from "../../support/hf-checkpoint.js";
import { makeFixture, writeVariant, type Fixture } from "./helpers.js";

const skip = spmUnavailableReason();

let fx: Fixture | undefined;
let root = "";
let pristine = "";
let pristineSharded = "";
let n = 0;

before(async () => {
  if (skip) return;
  fx = await makeFixture();
  root = await tempDir("rerankd-convert-err-");
  pristine = (await writeVariant(fx, root, "f32")).dir;
  pristineSharded = (await writeVariant(fx, root, "sharded")).dir;
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** A fresh copy of a pristine checkpoint to break, and an empty output folder. */
async function scratch(from = pristine): Promise<{ dir: string; outDir: string; out: string }> {
  n++;
  const dir = join(root, `case-${n}`);
  await cp(from, dir, { recursive: true });
  const outDir = join(root, `out-${n}`);
  return { dir, outDir, out: join(outDir, "model.gguf") };
}

async function expectFailure(opts: ConvertOptions, pattern: RegExp, outDir: string): Promise<void> {
  await assert.rejects(convertCheckpoint(opts), (err: unknown) => {
    assert.ok(err instanceof ConvertError, `expected ConvertError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
  // Nothing at the output path, and no temporary file beside it.
  const left = await readdir(outDir).catch(() => []);
  assert.deepEqual(left, [], `left behind in ${outDir}: ${left.join(", ")}`);
}

test("unknown architecture is rejected, naming the supported ones", { skip }, async () => {
  const { dir, outDir, out } = await scratch();
  const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, architectures: ["LlamaForCausalLM"] }));
  await expectFailure({ dir, out, outtype: "f16" }, /unsupported architecture "LlamaForCausalLM".*supported: GemmaForCausalLM/, outDir);
  await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, architectures: undefined }));
  await expectFailure({ dir, out, outtype: "f16" }, /no "architectures" list; supported: GemmaForCausalLM/, outDir);
  await writeFile(join(dir, "config.json"), "{ not json");
  await expectFailure({ dir, out, outtype: "f16" }, /config.json is not valid JSON/, outDir);
  await unlink(join(dir, "config.json"));
  await expectFailure({ dir, out, outtype: "f16" }, /missing config.json in/, outDir);
});

test("missing or corrupt tokenizer.model", { skip }, async () => {
  const { dir, outDir, out } = await scratch();
  await unlink(join(dir, "tokenizer.model"));
  await expectFailure({ dir, out, outtype: "f32" }, /missing tokenizer.model in .*SentencePiece/, outDir);
  await writeFile(join(dir, "tokenizer.model"), Uint8Array.from([0x0a, 0x7f, 0x01]));
  await expectFailure({ dir, out, outtype: "f32" }, /tokenizer.model: malformed SentencePiece model: truncated/, outDir);
});

test("truncated safetensors is rejected before anything is written", { skip }, async () => {
  const { dir, outDir, out } = await scratch();
  const file = join(dir, "model.safetensors");
  const { size } = await stat(file);
  await truncate(file, size - 100);
  await expectFailure({ dir, out, outtype: "q8_0" }, /model\.safetensors: tensor "[^"]+": data_offsets .* run past the end/, outDir);
});

test("a failure in the middle of writing leaves nothing behind", { skip }, async () => {
  const { dir, outDir, out } = await scratch();
  const file = join(dir, "model.safetensors");
  let truncated = false;
  const onProgress = ({ done }: { done: number }) => {
    // After the first tensor is written, the source file loses its tail (disk error, concurrent download...).
    if (done === 1 && !truncated) {
      truncated = true;
      truncateSync(file, 4096);
    }
  };
  await expectFailure({ dir, out, outtype: "f16", onProgress }, /unexpected end of file in .*model\.safetensors while reading tensor/, outDir);
  assert.ok(truncated);
});

test("a shard of a sharded checkpoint is missing", { skip }, async () => {
  const { dir, outDir, out } = await scratch(pristineSharded);
  await unlink(join(dir, "model-00002-of-00003.safetensors"));
  await expectFailure({ dir, out, outtype: "f16" }, /shard model-00002-of-00003.safetensors listed in .* is missing/, outDir);
});

test("a header that lies (shape vs byte span) names file and tensor", { skip }, async () => {
  const { dir, outDir, out } = await scratch();
  const file = join(dir, "model.safetensors");
  const bytes = await readFile(file);
  const hlen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + hlen).toString("utf8")) as Record<string, { shape: number[] }>;
  header["model.layers.1.mlp.up_proj.weight"].shape = [176, 65];
  let json = JSON.stringify(header);
  json += " ".repeat(Math.max(0, hlen - Buffer.byteLength(json)));
  assert.equal(Buffer.byteLength(json), hlen);
  bytes.write(json, 8, "utf8");
  await writeFile(file, bytes);
  await expectFailure({ dir, out, outtype: "f16" }, /model\.safetensors: tensor "model\.layers\.1\.mlp\.up_proj\.weight": shape \[176,65\] of F32 needs 45760 bytes/, outDir);
});

test("a checkpoint inconsistent with config.json, or with unknown tensors, is rejected", { skip }, async () => {
  assert.ok(fx);
  const { dir, outDir, out } = await scratch();
  const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, intermediate_size: 192 }));
  await expectFailure({ dir, out, outtype: "f16" }, /"model\.layers\.0\.mlp\.gate_proj\.weight" .* has shape \[176, 64\], but config.json implies \[192, 64\]/, outDir);
  await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 3 }));
  await expectFailure({ dir, out, outtype: "f16" }, /lacks tensor "model\.layers\.2\.input_layernorm\.weight"/, outDir);
  await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, hidden_size: "64" }));
  await expectFailure({ dir, out, outtype: "f16" }, /"hidden_size" must be a positive integer/, outDir);

  const other = await scratch();
  const extra = encodeSafetensors([{ name: "model.layers.0.self_attn.q_proj.bias", shape: [128], dtype: "F32", data: new Float32Array(128) }]);
  await writeFile(join(other.dir, "model-extra.safetensors"), extra);
  await unlink(join(other.dir, "model.safetensors"));
  await cp(join(pristine, "model.safetensors"), join(other.dir, "model-00001.safetensors"));
  await expectFailure({ dir: other.dir, out: other.out, outtype: "f16" }, /cannot map tensor "model\.layers\.0\.self_attn\.q_proj\.bias"/, other.outDir);
});

test("lm_head: a tied copy is dropped, a different one is refused", { skip }, async () => {
  assert.ok(fx);
  const tied = await writeVariant(fx, join(root, "lm-tied"), "bf16", { lmHead: "tied-copy" });
  const out = join(root, "lm-tied.gguf");
  const res = await convertCheckpoint({ dir: tied.dir, out, outtype: "f16" });
  assert.equal(res.lmHead, "tied");
  const header = await readGgufHeader(out);
  assert.ok(!header.tensors.some((t) => t.name === "output.weight"));
  assert.equal(header.tensors.length, 2 + 9 * fx.config.num_hidden_layers);

  const emb = fx.weights.get("model.embed_tokens.weight");
  assert.ok(emb);
  const different = emb.data.slice();
  different[different.length - 1] += 0.5;
  const untied = await writeVariant(fx, join(root, "lm-untied"), "f32", { lmHead: different });
  const outDir = join(root, "lm-untied-out");
  await expectFailure({ dir: untied.dir, out: join(outDir, "m.gguf"), outtype: "f16" }, /carries its own lm_head\.weight, different from model\.embed_tokens\.weight/, outDir);
});

test("an unsupported outtype is rejected", { skip }, async () => {
  const { dir, outDir, out } = await scratch();
  await expectFailure({ dir, out, outtype: "q4_0" as unknown as "f16" }, /unsupported outtype "q4_0"/, outDir);
});

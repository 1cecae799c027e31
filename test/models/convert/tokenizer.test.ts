// Tokenizer fidelity: a tokenizer.model trained by spm_train, converted to
// GGUF, must make llama.cpp (node-llama-cpp) produce exactly the ids that
// spm_encode produces.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { convertCheckpoint } from "../../../src/models/convert/index.js";
import { readGgufHeader } from "../../../src/models/gguf/reader.js";
import type { GgufValue } from "../../../src/models/gguf/types.js";
import { SPM_IDS, spmEncodeLines, spmEncodeText, spmUnavailableReason, tempDir } from "../../support/hf-checkpoint.js";
import { makeFixture, tokenizeWithLlama, writeVariant, type Fixture } from "./helpers.js";

const skip = spmUnavailableReason();

/** Not the training text: mixes seen and unseen characters (unseen ones go through byte fallback). */
const TEXT = [
  "A: Où se trouve la gare ? B: À deux pas, près du café « Le Château ».",
  "Yes",
  "No",
  "Größenwahn, Äpfel und Übermut — naïve façade, jalapeño, São Paulo, Þórshöfn, Ørsted.",
  "北京大学的学生喜欢学习机器学习。今日は東京で寿司を食べました。한국어도 조금 합니다.",
  "Emoji: 😀🚀🍕 seen, 🦙🧪🫠 unseen, flags 🇫🇷🇯🇵, ZWJ family 👨‍👩‍👧, skin tone 👍🏽.",
  "Digits 0123456789, 3.14159, 1e-3, 2025-12-31, ٣٤٥ and ①②③.",
  "Whitespace:  two,   three,    four,\ttab,\t\ttwo tabs, trailing   ",
  "    leading spaces",
  "",
  "",
  "after two empty lines; A:B: A: B: Yes/No yes/no YES/NO",
  "Rare: ∮ ⅋ ☃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u00a0nbsp\u200bzwsp end",
].join("\n");

let fx: Fixture | undefined;
let root: string | undefined;
let gguf: string | undefined;

before(async () => {
  if (skip) return;
  fx = await makeFixture();
  root = await tempDir("rerankd-convert-tok-");
  const { dir } = await writeVariant(fx, root, "f32");
  gguf = join(root, "tok.gguf");
  await convertCheckpoint({ dir, out: gguf, outtype: "f16" });
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test("llama.cpp tokenizes the converted vocabulary exactly like spm_encode", { skip }, async () => {
  assert.ok(fx && gguf);
  const lines = TEXT.split("\n");
  const expectedLines = spmEncodeLines(fx.tokenizerModel, lines);
  const expectedText = spmEncodeText(fx.tokenizerModel, TEXT);
  const got = await tokenizeWithLlama(gguf, [...lines, TEXT]);
  lines.forEach((line, i) => assert.deepEqual(got.ids[i], expectedLines[i], `line ${i}: ${JSON.stringify(line)}`));
  assert.deepEqual(got.ids[lines.length], expectedText, "whole multi-line text");
  // The text exercises byte fallback (ids of <0x..> pieces) and the "\n" user-defined symbol.
  assert.ok(expectedText.includes(SPM_IDS.newline));
  assert.ok(expectedText.some((id) => id > SPM_IDS.newline && id <= SPM_IDS.newline + 256), "expected byte-fallback tokens");
  assert.equal(got.bos, SPM_IDS.bos);
  assert.equal(got.eos, SPM_IDS.eos);
});

test("tokenizer metadata mirrors llama.cpp's converter", { skip }, async () => {
  assert.ok(fx && gguf);
  const { metadata } = await readGgufHeader(gguf);
  const scalar = (key: string): GgufValue["value"] | undefined => metadata[key]?.value;
  assert.equal(scalar("tokenizer.ggml.model"), "llama");
  assert.equal(scalar("tokenizer.ggml.pre"), "default");
  assert.equal(scalar("tokenizer.ggml.bos_token_id"), SPM_IDS.bos);
  assert.equal(scalar("tokenizer.ggml.eos_token_id"), SPM_IDS.eos);
  assert.equal(scalar("tokenizer.ggml.padding_token_id"), SPM_IDS.pad);
  assert.equal(scalar("tokenizer.ggml.unknown_token_id"), SPM_IDS.unk);
  assert.equal(scalar("tokenizer.ggml.add_bos_token"), true);
  assert.equal(scalar("tokenizer.ggml.add_eos_token"), false);
  assert.equal(scalar("tokenizer.ggml.add_space_prefix"), false);
  assert.equal(metadata["tokenizer.ggml.eot_token_id"], undefined, "id 107 is not <end_of_turn> in this vocabulary");
  const tokens = metadata["tokenizer.ggml.tokens"];
  const types = metadata["tokenizer.ggml.token_type"];
  const scores = metadata["tokenizer.ggml.scores"];
  assert.ok(tokens?.type === "array" && types?.type === "array" && scores?.type === "array");
  assert.equal(tokens.value.length, fx.config.vocab_size);
  assert.equal(types.itemType, "i32");
  assert.equal(scores.itemType, "f32");
  // Added tokens listed by tokenizer_config.json: specials are CONTROL (3), "\n" is USER_DEFINED (4); bytes are BYTE (6).
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => types.value[i]), [3, 3, 3, 3, 4, 6]);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => tokens.value[i]), ["<pad>", "<eos>", "<bos>", "<unk>", "\n", "<0x00>"]);
  assert.deepEqual([0, 4].map((i) => scores.value[i]), [-1000, -1000]);
  const [yes] = spmEncodeLines(fx.tokenizerModel, ["Yes"]);
  assert.equal(tokens.value[yes[0]], "Yes");
  assert.equal(types.value[yes[0]], 1);
  assert.equal(scalar("general.architecture"), "gemma");
  assert.equal(scalar("gemma.context_length"), fx.config.max_position_embeddings);
  assert.equal(scalar("gemma.embedding_length"), fx.config.hidden_size);
  assert.equal(scalar("gemma.block_count"), fx.config.num_hidden_layers);
  assert.equal(scalar("gemma.feed_forward_length"), fx.config.intermediate_size);
  assert.equal(scalar("gemma.attention.head_count"), fx.config.num_attention_heads);
  assert.equal(scalar("gemma.attention.head_count_kv"), fx.config.num_key_value_heads);
  assert.equal(scalar("gemma.attention.key_length"), fx.config.head_dim);
  assert.equal(scalar("gemma.attention.value_length"), fx.config.head_dim);
  assert.equal(scalar("gemma.attention.layer_norm_rms_epsilon"), Math.fround(fx.config.rms_norm_eps));
  assert.equal(scalar("general.file_type"), 1);
});

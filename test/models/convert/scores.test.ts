// Converted GGUF → llama.cpp (node-llama-cpp) → raw "Yes" logits, against the
// float64 reference forward pass run on the HF safetensors weights.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { convertCheckpoint, type OutType } from "../../../src/models/convert/index.js";
import { GgmlType } from "../../../src/models/gguf/types.js";
import { roundToBf16 } from "../../../src/models/safetensors/index.js";
import { SPM_IDS, spmEncodeLines, spmEncodeText, spmUnavailableReason, tempDir, type HfWeights } from "../../support/hf-checkpoint.js";
import { ggufTensors, llamaLogits, makeFixture, ranking, referenceLogits, writeVariant, type Fixture } from "./helpers.js";

const skip = spmUnavailableReason();

const PROMPT = "Given a query A and a passage B, determine whether the passage contains an answer to the query by providing a prediction of either 'Yes' or 'No'.";
const PAIRS: Array<[string, string]> = [
  ["what is panda?", "The giant panda is a bear species endemic to China."],
  ["what is panda?", "hi"],
  ["capital of France", "Paris is the capital and most populous city of France."],
  ["capital of France", "Der Mond umkreist die Erde in etwa 27 Tagen."],
  ["日本の首都はどこですか？", "東京は日本の首都です。"],
  ["北京是中国的首都吗？", "是的，北京是中华人民共和国的首都。"],
  ["¿Dónde está el baño?", "El baño está al fondo, a la derecha. 🚽"],
  ["best pizza 🍕", "Margherita: tomato, mozzarella, basil.  Bake at 250°C for 8 minutes."],
  ["2 + 2", "The answer is 4, not 22."],
  ["Москва", "Москва — столица России."],
  ["Zażółć gęślą jaźń", "Příliš žluťoučký kůň úpěl ďábelské ódy."],
  ["Yes or No?", "Yes"],
];

/** Candidate inputs: every pair in three prompt layouts (FlagEmbedding's full instruction, a short question, none). */
function candidates(tokenizerModel: string): number[][] {
  const texts = PAIRS.flatMap(([q, p]) => [`A: ${q}\nB: ${p}\n${PROMPT}`, `A: ${q}\nB: ${p}\nYes or No?`, `A: ${q}\nB: ${p}`]);
  return texts.map((t) => [SPM_IDS.bos, ...spmEncodeText(tokenizerModel, t)]);
}

/** Minimum gap between the reference logits of the selected sequences. */
const MIN_GAP = 0.12;

/**
 * Random weights give logits within about one unit of each other, so some
 * candidates score nearly alike and their order at q8_0 precision would be a
 * coin toss. Using the reference alone, keep candidates whose logits are at
 * least MIN_GAP apart (greedily, in descending order): the ranking is then
 * well defined at the q8_0 tolerance below.
 */
function selectSequences(fx: Fixture, yesId: number): number[][] {
  const pool = candidates(fx.tokenizerModel);
  const ref = referenceLogits(fx.config, fx.weights, pool, yesId);
  const order = ranking(ref);
  const chosen: number[] = [];
  for (const i of order) {
    if (chosen.length === 0 || ref[chosen[chosen.length - 1]] - ref[i] >= MIN_GAP) chosen.push(i);
  }
  return chosen.map((i) => pool[i]);
}

interface Setup {
  fx: Fixture;
  sequences: number[][];
  yesId: number;
  ggufs: Record<string, string>;
  stored: Record<"f32" | "bf16" | "sharded", HfWeights>;
  root: string;
}
let s: Setup | undefined;

before(async () => {
  if (skip) return;
  const root = await tempDir("rerankd-convert-scores-");
  const fx = await makeFixture();
  const [yes] = spmEncodeLines(fx.tokenizerModel, ["Yes"]);
  assert.equal(yes.length, 1, "the fixture tokenizer must have a single 'Yes' piece");
  const sequences = selectSequences(fx, yes[0]);
  const f32 = await writeVariant(fx, root, "f32");
  const bf16 = await writeVariant(fx, root, "bf16");
  const sharded = await writeVariant(fx, root, "sharded");
  const ggufs: Record<string, string> = {};
  const convert = async (key: string, dir: string, outtype: OutType) => {
    ggufs[key] = join(root, `${key}.gguf`);
    await convertCheckpoint({ dir, out: ggufs[key], outtype });
  };
  await convert("f32", f32.dir, "f32");
  await convert("f16", f32.dir, "f16");
  await convert("q8_0", f32.dir, "q8_0");
  await convert("bf16-in", bf16.dir, "f32");
  await convert("sharded-in", sharded.dir, "f32");
  s = { fx, sequences, yesId: yes[0], ggufs, stored: { f32: f32.stored, bf16: bf16.stored, sharded: sharded.stored }, root };
});

after(async () => {
  if (s) await rm(s.root, { recursive: true, force: true });
});

function setup(): Setup {
  if (!s) throw new Error("setup failed");
  return s;
}

function report(label: string, got: number[], ref: number[]): { maxAbs: number; maxRel: number } {
  let maxAbs = 0;
  let maxRel = 0;
  got.forEach((g, i) => {
    const d = Math.abs(g - ref[i]);
    maxAbs = Math.max(maxAbs, d);
    maxRel = Math.max(maxRel, d / Math.max(1e-9, Math.abs(ref[i])));
  });
  console.log(`# ${label}: max |llama.cpp - reference| = ${maxAbs.toExponential(3)} (max relative ${maxRel.toExponential(3)}) over ${got.length} sequences; logits ${ref.map((r) => r.toFixed(3)).join(" ")}`);
  return { maxAbs, maxRel };
}

test("f32 conversion: llama.cpp's Yes logits match the float64 reference within 5e-3 + 2e-3·|ref|", { skip }, async () => {
  const { fx, sequences, yesId, ggufs } = setup();
  assert.ok(sequences.length >= 10);
  assert.ok(sequences.every((q) => q.length >= 10));
  const ref = referenceLogits(fx.config, fx.weights, sequences, yesId);
  const got = await llamaLogits(ggufs.f32, sequences, yesId, "exact");
  report("f32 weights, f32 KV cache, no flash attention", got, ref);
  got.forEach((g, i) => assert.ok(Math.abs(g - ref[i]) <= 5e-3 + 2e-3 * Math.abs(ref[i]), `sequence ${i}: llama.cpp ${g}, reference ${ref[i]}`));
  // The scores must actually discriminate, or the comparison would be vacuous.
  assert.ok(Math.max(...ref) - Math.min(...ref) > 0.5, "reference logits are too similar");

  // With llama.cpp's default context settings (f16 KV cache, flash attention) the error grows but stays inside the same bound.
  const gotF16Kv = await llamaLogits(ggufs.f32, sequences, yesId, "default");
  report("f32 weights, default context (f16 KV cache, flash attention)", gotF16Kv, ref);
  gotF16Kv.forEach((g, i) => assert.ok(Math.abs(g - ref[i]) <= 5e-3 + 2e-3 * Math.abs(ref[i]), `sequence ${i} (f16 KV): ${g} vs ${ref[i]}`));
});

test("bf16 and sharded inputs give the same GGUF tensors as f32 input (after bf16 rounding)", { skip }, async () => {
  const { ggufs, stored, fx } = setup();
  const fromF32 = await ggufTensors(ggufs.f32);
  const fromSharded = await ggufTensors(ggufs["sharded-in"]);
  const fromBf16 = await ggufTensors(ggufs["bf16-in"]);
  assert.deepEqual([...fromSharded.keys()], [...fromF32.keys()]);
  assert.deepEqual([...fromBf16.keys()], [...fromF32.keys()]);
  assert.equal(fromF32.size, 2 + 9 * fx.config.num_hidden_layers);
  for (const [name, t] of fromF32) {
    const sh = fromSharded.get(name);
    const bf = fromBf16.get(name);
    assert.ok(sh && bf);
    assert.deepEqual(sh.info.shape, t.info.shape, name);
    assert.equal(sh.info.type, GgmlType.F32, name);
    assert.deepEqual(sh.values, t.values, `${name}: sharded input differs`);
    assert.deepEqual(bf.info.shape, t.info.shape, name);
  }
  // bf16 input: every GGUF value is the bf16-rounded HF value (norms: 1 + bf16(w), added in f32).
  const hfName = (gguf: string): string => {
    if (gguf === "token_embd.weight") return "model.embed_tokens.weight";
    if (gguf === "output_norm.weight") return "model.norm.weight";
    const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(gguf);
    assert.ok(m, gguf);
    const map: Record<string, string> = {
      attn_norm: "input_layernorm", attn_q: "self_attn.q_proj", attn_k: "self_attn.k_proj", attn_v: "self_attn.v_proj",
      attn_output: "self_attn.o_proj", ffn_norm: "post_attention_layernorm", ffn_gate: "mlp.gate_proj", ffn_up: "mlp.up_proj", ffn_down: "mlp.down_proj",
    };
    return `model.layers.${m[1]}.${map[m[2]]}.weight`;
  };
  for (const [name, t] of fromBf16) {
    const src = fx.weights.get(hfName(name));
    assert.ok(src, name);
    const rounded = roundToBf16(src.data);
    assert.deepEqual(stored.bf16.get(hfName(name))?.data, rounded);
    const isNorm = name.endsWith("_norm.weight");
    const expected = isNorm ? rounded.map((v) => Math.fround(v + 1)) : rounded;
    assert.deepEqual(t.values, expected, `${name}: bf16 input`);
    // And the f32 conversion is the HF weights themselves (norms + 1).
    const expectedF32 = isNorm ? src.data.map((v) => Math.fround(v + 1)) : src.data;
    assert.deepEqual(fromF32.get(name)?.values, expectedF32, `${name}: f32 input`);
  }
});

test("f16 and q8_0 conversions: same ranking as the reference, within measured tolerances", { skip }, async () => {
  const { fx, sequences, yesId, ggufs } = setup();
  const ref = referenceLogits(fx.config, fx.weights, sequences, yesId);

  const f16Types = await ggufTensors(ggufs.f16);
  assert.equal(f16Types.get("blk.0.attn_q.weight")?.info.type, GgmlType.F16);
  assert.equal(f16Types.get("blk.0.attn_norm.weight")?.info.type, GgmlType.F32);
  const f16 = await llamaLogits(ggufs.f16, sequences, yesId);
  const e16 = report("f16 weights, default context", f16, ref);

  const q8 = await ggufTensors(ggufs.q8_0);
  assert.equal(q8.get("token_embd.weight")?.info.type, GgmlType.Q8_0);
  assert.equal(q8.get("blk.0.attn_q.weight")?.info.type, GgmlType.Q8_0);
  assert.equal(q8.get("blk.0.ffn_norm.weight")?.info.type, GgmlType.F32);
  // ffn_down rows are intermediate_size = 176 long, not a multiple of 32: f16 fallback, as llama.cpp.
  assert.equal(q8.get("blk.0.ffn_down.weight")?.info.type, GgmlType.F16);
  const q8Logits = await llamaLogits(ggufs.q8_0, sequences, yesId);
  const e8 = report("q8_0 weights, default context", q8Logits, ref);

  assert.deepEqual(ranking(f16), ranking(ref), "f16 ranking");
  assert.deepEqual(ranking(q8Logits), ranking(ref), "q8_0 ranking");
  // f16 weights round each value by at most 2^-11 relative: the f32 bound still holds.
  f16.forEach((g, i) => assert.ok(Math.abs(g - ref[i]) <= 5e-3 + 2e-3 * Math.abs(ref[i]), `f16 sequence ${i}: ${g} vs ${ref[i]}`));
  // q8_0 stores each weight to within half a step of amax/127 of its 32-value block (<= 0.4% of the
  // block's largest value); through two layers and the tied embedding head this measured 2.1e-2 on
  // logits of about 1 (2.8% relative). Bound: 5e-2 + 2e-2·|ref|, i.e. about twice the measured error,
  // still well under MIN_GAP / 2 so the bound itself implies the ranking.
  q8Logits.forEach((g, i) => assert.ok(Math.abs(g - ref[i]) <= 5e-2 + 2e-2 * Math.abs(ref[i]), `q8_0 sequence ${i}: ${g} vs ${ref[i]}`));
  void e16;
  void e8;
});

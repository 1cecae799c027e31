// Test fixtures for the HF → GGUF converter:
//  (a) a real SentencePiece `tokenizer.model`, trained with Debian's `spm_train`
//      (package "sentencepiece") on test/support/spm/train.txt with Gemma's layout
//      (BPE, byte fallback, pad/eos/bos/unk = 0/1/2/3, "\n" as a user-defined
//      symbol, no dummy prefix, whitespace kept, identity normalization), cached
//      under <repo>/.cache/fixtures/;
//  (b) a tiny Hugging Face `GemmaForCausalLM` checkpoint folder written from
//      seeded random weights, in f32, bf16 or sharded-f32 safetensors.
//
// Expected token ids always come from `spm_encode`, never from the code under test.

import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeSafetensors, roundToBf16, type SafetensorsWriteTensor } from "../../src/models/safetensors/index.js";
import { seededGemmaWeights } from "./random-gemma.js";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const SPM_TRAIN_TEXT = fileURLToPath(new URL("./spm/train.txt", import.meta.url));
const FIXTURE_CACHE = join(REPO_ROOT, ".cache", "fixtures");

/** Ids fixed by the training flags (Gemma's layout); "\n" is the first user-defined symbol. */
export const SPM_IDS = { pad: 0, eos: 1, bos: 2, unk: 3, newline: 4 } as const;

const SPM_TRAIN_ARGS = [
  "--model_type=bpe",
  "--vocab_size=1000",
  "--hard_vocab_limit=false",
  "--byte_fallback=true",
  "--character_coverage=1.0",
  "--pad_id=0",
  "--eos_id=1",
  "--bos_id=2",
  "--unk_id=3",
  "--pad_piece=<pad>",
  "--eos_piece=<eos>",
  "--bos_piece=<bos>",
  "--unk_piece=<unk>",
  "--add_dummy_prefix=false",
  "--remove_extra_whitespaces=false",
  "--normalization_rule_name=identity",
  "--split_digits=true",
  "--allow_whitespace_only_pieces=true",
  "--user_defined_symbols=\n",
  "--num_threads=2",
];

function onPath(tool: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
}

/**
 * Why the SentencePiece tools cannot be used, or undefined when they can.
 * Tests skip with this message; nothing is installed from here
 * (.ci/run installs Debian's `sentencepiece` package).
 */
export function spmUnavailableReason(): string | undefined {
  const missing = ["spm_train", "spm_encode"].filter((t) => !onPath(t));
  if (missing.length === 0) return undefined;
  return `${missing.join(" and ")} not installed (Debian package "sentencepiece"; .ci/run installs it)`;
}

/**
 * Path of the trained `tokenizer.model` (and its `.vocab`), training it on first
 * use. Cached by a hash of the training text and flags.
 */
export async function ensureTokenizerModel(): Promise<{ model: string; vocab: string }> {
  const reason = spmUnavailableReason();
  if (reason) throw new Error(reason);
  const text = await readFile(SPM_TRAIN_TEXT);
  const key = createHash("sha256").update(text).update(JSON.stringify(SPM_TRAIN_ARGS)).digest("hex").slice(0, 16);
  const dir = join(FIXTURE_CACHE, `spm-gemma-${key}`);
  const model = join(dir, "tokenizer.model");
  const vocab = join(dir, "tokenizer.vocab");
  if (existsSync(model) && existsSync(vocab)) return { model, vocab };

  await mkdir(FIXTURE_CACHE, { recursive: true });
  const work = await mkdtemp(join(FIXTURE_CACHE, "spm-train-"));
  try {
    execFileSync("spm_train", [`--input=${SPM_TRAIN_TEXT}`, `--model_prefix=${join(work, "tokenizer")}`, ...SPM_TRAIN_ARGS], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    try {
      await rename(work, dir);
    } catch (err) {
      // Another process finished first: use its copy.
      if (!existsSync(model)) throw err;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { model, vocab };
}

/**
 * Asserts the id layout the fixtures rely on, from spm_train's own `.vocab`
 * listing (not from the converter's protobuf decoder).
 */
export function checkSpmLayout(vocabPath: string): number {
  const text = readFileSync(vocabPath, "utf8");
  // Each entry is "piece\tscore\n"; the "\n" piece itself makes entry 4 span two lines.
  const expectedHead = "<pad>\t0\n<eos>\t0\n<bos>\t0\n<unk>\t0\n\n\t0\n<0x00>\t0\n";
  if (!text.startsWith(expectedHead)) throw new Error(`unexpected tokenizer layout in ${vocabPath}`);
  const lines = text.split("\n").length - 1;
  return lines - 1; // entries: one line per piece, plus one extra for "\n"
}

/** Token ids of each line, from `spm_encode --output_format=id` (one call for all lines). */
export function spmEncodeLines(modelPath: string, lines: readonly string[]): number[][] {
  for (const l of lines) if (l.includes("\n")) throw new Error("spmEncodeLines: a line contains a newline");
  const out = execFileSync("spm_encode", [`--model=${modelPath}`, "--output_format=id"], {
    input: lines.map((l) => `${l}\n`).join(""),
    encoding: "utf8",
  });
  const rows = out.split("\n");
  rows.pop(); // text after the final newline
  if (rows.length !== lines.length) throw new Error(`spm_encode returned ${rows.length} lines for ${lines.length}`);
  return rows.map((r) => (r === "" ? [] : r.split(" ").map(Number)));
}

/**
 * Token ids of a multi-line text. spm_encode reads one line at a time, so the
 * text is encoded line by line and the lines are joined with the id of the
 * "\n" user-defined symbol: SentencePiece always emits a user-defined symbol
 * as one atomic piece, and no learned piece can contain "\n" (training reads
 * line by line), so no piece spans a line break.
 */
export function spmEncodeText(modelPath: string, text: string): number[] {
  const perLine = spmEncodeLines(modelPath, text.split("\n"));
  const ids: number[] = [];
  perLine.forEach((line, i) => {
    if (i > 0) ids.push(SPM_IDS.newline);
    ids.push(...line);
  });
  return ids;
}

// ---------------------------------------------------------------------------
// Tiny Gemma checkpoint.

export interface TinyGemmaConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
}

/**
 * Defaults: hidden 64, 4 query heads of head_dim 32 (so q/o are 128 wide, not
 * hidden: like Gemma-7B, head_dim × heads ≠ hidden), 1 KV head, and an FFN of
 * 176, not a multiple of 32, so q8_0 output must fall back to f16 for ffn_down.
 */
export function tinyGemmaConfig(vocabSize: number, overrides: Partial<TinyGemmaConfig> = {}): TinyGemmaConfig {
  return {
    vocab_size: vocabSize,
    hidden_size: 64,
    intermediate_size: 176,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 32,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    ...overrides,
  };
}

export interface HfTensor {
  /** Row-major, PyTorch order (e.g. a Linear is [out, in]). */
  shape: number[];
  data: Float32Array;
}

/** Weights named as in the HF checkpoint, HF convention (RMSNorm weights w, applied as 1 + w). */
export type HfWeights = Map<string, HfTensor>;

/** Seeded random weights for a config, scaled so activations stay O(1). */
export function randomGemmaWeights(config: TinyGemmaConfig, seed: number): HfWeights {
  const H = config.hidden_size;
  const qDim = config.num_attention_heads * config.head_dim;
  const kvDim = config.num_key_value_heads * config.head_dim;
  const F = config.intermediate_size;
  const shape = {
    vocabSize: config.vocab_size,
    hiddenSize: H,
    numLayers: config.num_hidden_layers,
    numHeads: config.num_attention_heads,
    numKvHeads: config.num_key_value_heads,
    headDim: config.head_dim,
    intermediateSize: F,
  };
  // Gemma multiplies embeddings by sqrt(hidden): std 1/sqrt(H) gives unit-scale inputs.
  const weights = seededGemmaWeights(shape, seed, { embedding: 1 / Math.sqrt(H), normOffset: 0.1, residualGain: 1 });
  // Inserted in checkpoint order: the safetensors files list tensors in this order.
  const w: HfWeights = new Map();
  w.set("model.embed_tokens.weight", { shape: [config.vocab_size, H], data: weights.embedTokens });
  weights.layers.forEach((layer, l) => {
    const p = `model.layers.${l}.`;
    w.set(`${p}input_layernorm.weight`, { shape: [H], data: layer.inputLayernorm });
    w.set(`${p}self_attn.q_proj.weight`, { shape: [qDim, H], data: layer.qProj });
    w.set(`${p}self_attn.k_proj.weight`, { shape: [kvDim, H], data: layer.kProj });
    w.set(`${p}self_attn.v_proj.weight`, { shape: [kvDim, H], data: layer.vProj });
    w.set(`${p}self_attn.o_proj.weight`, { shape: [H, qDim], data: layer.oProj });
    w.set(`${p}post_attention_layernorm.weight`, { shape: [H], data: layer.postAttentionLayernorm });
    w.set(`${p}mlp.gate_proj.weight`, { shape: [F, H], data: layer.gateProj });
    w.set(`${p}mlp.up_proj.weight`, { shape: [F, H], data: layer.upProj });
    w.set(`${p}mlp.down_proj.weight`, { shape: [H, F], data: layer.downProj });
  });
  w.set("model.norm.weight", { shape: [H], data: weights.finalNorm });
  return w;
}

export type CheckpointVariant = "f32" | "bf16" | "sharded";

export interface WriteCheckpointOptions {
  variant: CheckpointVariant;
  config: TinyGemmaConfig;
  weights: HfWeights;
  /** tokenizer.model to copy in (omit to leave it out). */
  tokenizerModel?: string;
  /** lm_head.weight: absent (default), a copy of the embeddings, or given values. */
  lmHead?: "absent" | "tied-copy" | Float32Array;
  /** Extra / replaced config.json fields. */
  configOverrides?: Record<string, unknown>;
}

/**
 * Writes config.json, tokenizer_config.json, special_tokens_map.json,
 * tokenizer.model and the weights into `dir`. Returns the weights as they
 * were stored (bf16-rounded for the bf16 variant).
 */
export async function writeHfGemmaCheckpoint(dir: string, opts: WriteCheckpointOptions): Promise<HfWeights> {
  await mkdir(dir, { recursive: true });
  const { config } = opts;
  await writeFile(
    join(dir, "config.json"),
    JSON.stringify(
      {
        architectures: ["GemmaForCausalLM"],
        model_type: "gemma",
        attention_bias: false,
        attention_dropout: 0,
        hidden_act: "gelu_pytorch_tanh",
        hidden_activation: "gelu_pytorch_tanh",
        initializer_range: 0.02,
        bos_token_id: SPM_IDS.bos,
        eos_token_id: SPM_IDS.eos,
        pad_token_id: SPM_IDS.pad,
        torch_dtype: opts.variant === "bf16" ? "bfloat16" : "float32",
        transformers_version: "4.42.0",
        use_cache: true,
        ...config,
        ...opts.configOverrides,
      },
      null,
      2,
    ),
  );
  const added = (content: string, special: boolean) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false, special });
  await writeFile(
    join(dir, "tokenizer_config.json"),
    JSON.stringify(
      {
        add_bos_token: true,
        add_eos_token: false,
        added_tokens_decoder: {
          [SPM_IDS.pad]: added("<pad>", true),
          [SPM_IDS.eos]: added("<eos>", true),
          [SPM_IDS.bos]: added("<bos>", true),
          [SPM_IDS.unk]: added("<unk>", true),
          [SPM_IDS.newline]: added("\n", false),
        },
        bos_token: "<bos>",
        eos_token: "<eos>",
        pad_token: "<pad>",
        unk_token: "<unk>",
        clean_up_tokenization_spaces: false,
        legacy: null,
        model_max_length: config.max_position_embeddings,
        sp_model_kwargs: {},
        spaces_between_special_tokens: false,
        tokenizer_class: "GemmaTokenizer",
        use_default_system_prompt: false,
      },
      null,
      2,
    ),
  );
  await writeFile(
    join(dir, "special_tokens_map.json"),
    JSON.stringify({ bos_token: "<bos>", eos_token: "<eos>", pad_token: "<pad>", unk_token: "<unk>" }, null, 2),
  );
  if (opts.tokenizerModel) await copyFile(opts.tokenizerModel, join(dir, "tokenizer.model"));

  const stored: HfWeights = new Map();
  const list: SafetensorsWriteTensor[] = [];
  const dtype = opts.variant === "bf16" ? "BF16" : "F32";
  const add = (name: string, t: HfTensor) => {
    stored.set(name, { shape: t.shape, data: dtype === "BF16" ? roundToBf16(t.data) : t.data });
    list.push({ name, shape: t.shape, dtype, data: t.data });
  };
  for (const [name, t] of opts.weights) add(name, t);
  const emb = opts.weights.get("model.embed_tokens.weight");
  if (opts.lmHead === "tied-copy" && emb) add("lm_head.weight", { shape: emb.shape, data: emb.data.slice() });
  else if (opts.lmHead instanceof Float32Array && emb) add("lm_head.weight", { shape: emb.shape, data: opts.lmHead });

  if (opts.variant !== "sharded") {
    await writeSafetensors(join(dir, "model.safetensors"), list, { format: "pt" });
    return stored;
  }
  // Three shards: embeddings; even layers; the rest. The index maps every tensor.
  const shardOf = (name: string): number => {
    if (name === "model.embed_tokens.weight") return 0;
    const m = /^model\.layers\.(\d+)\./.exec(name);
    return m && Number(m[1]) % 2 === 0 ? 1 : 2;
  };
  const shardNames = [0, 1, 2].map((i) => `model-0000${i + 1}-of-00003.safetensors`);
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let s = 0; s < 3; s++) {
    const part = list.filter((t) => shardOf(t.name) === s);
    for (const t of part) {
      weightMap[t.name] = shardNames[s];
      total += t.data.byteLength;
    }
    await writeSafetensors(join(dir, shardNames[s]), part, { format: "pt" });
  }
  await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return stored;
}

/** Creates a fresh temporary directory under the OS temp dir. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

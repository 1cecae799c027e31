/**
 * Hugging Face `GemmaForCausalLM` → GGUF (`general.architecture = gemma`),
 * mirroring llama.cpp's convert_hf_to_gguf.py `GemmaModel`: the same metadata,
 * tensor names and type choices, norms stored as 1 + w, lm_head dropped
 * (llama.cpp's gemma graph always ties the output to token_embd).
 */
import { basename, resolve } from "node:path";
import type { SafetensorsCheckpoint } from "../safetensors/index.js";
import { f32, u32, type GgufMetadata } from "../gguf/types.js";
import { ConvertError } from "./errors.js";
import type { JsonObject } from "./hf-files.js";
import { convertSentencePieceVocab, gemmaTokenizerMetadata } from "./vocab.js";
import { checkPlan, configReader, generalMetadata, openCheckpoint, writePlanned, type DecoderHparams, type PlannedTensor } from "./tensor-plan.js";
import type { ConvertOptions, ConvertResult } from "./types.js";

export interface GemmaHparams extends DecoderHparams {
  vocabSize: number | undefined;
  ropeTheta: number | undefined;
}

function readHparams(config: JsonObject, configPath: string): GemmaHparams {
  const c = configReader(config, configPath);
  const numHeads = c.int("num_attention_heads");
  return {
    vocabSize: config.vocab_size === undefined ? undefined : c.int("vocab_size"),
    hiddenSize: c.int("hidden_size"),
    intermediateSize: c.int("intermediate_size"),
    numLayers: c.int("num_hidden_layers"),
    numHeads,
    numKvHeads: c.int("num_key_value_heads", numHeads),
    // transformers' GemmaConfig defaults (llama.cpp reads the config through AutoConfig).
    headDim: c.int("head_dim", 256),
    contextLength: c.int("max_position_embeddings", 8192),
    rmsNormEps: c.num("rms_norm_eps", 1e-6),
    ropeTheta: c.num("rope_theta", undefined),
  };
}

/** HF Gemma's RMSNorm scales by (1 + w); llama.cpp's by w. Computed in float32, as HF does. */
function onePlusNorm(values: Float32Array): Float32Array {
  for (let i = 0; i < values.length; i++) values[i] = Math.fround(values[i] + 1);
  return values;
}

/** The tensors a Gemma checkpoint must hold, in output order, with HF → GGUF names (gguf-py's tensor map). */
function expectedTensors(h: GemmaHparams, vocabRows: number): PlannedTensor[] {
  const H = h.hiddenSize;
  const q = h.numHeads * h.headDim;
  const kv = h.numKvHeads * h.headDim;
  const F = h.intermediateSize;
  const norm = (hfName: string, ggufName: string): PlannedTensor => ({ hfName, ggufName, hfShape: [H], f32: true, transform: onePlusNorm });
  const list: PlannedTensor[] = [{ hfName: "model.embed_tokens.weight", ggufName: "token_embd.weight", hfShape: [vocabRows, H] }];
  for (let b = 0; b < h.numLayers; b++) {
    const hf = `model.layers.${b}.`;
    const gg = `blk.${b}.`;
    list.push(
      norm(`${hf}input_layernorm.weight`, `${gg}attn_norm.weight`),
      { hfName: `${hf}self_attn.q_proj.weight`, ggufName: `${gg}attn_q.weight`, hfShape: [q, H] },
      { hfName: `${hf}self_attn.k_proj.weight`, ggufName: `${gg}attn_k.weight`, hfShape: [kv, H] },
      { hfName: `${hf}self_attn.v_proj.weight`, ggufName: `${gg}attn_v.weight`, hfShape: [kv, H] },
      { hfName: `${hf}self_attn.o_proj.weight`, ggufName: `${gg}attn_output.weight`, hfShape: [H, q] },
      norm(`${hf}post_attention_layernorm.weight`, `${gg}ffn_norm.weight`),
      { hfName: `${hf}mlp.gate_proj.weight`, ggufName: `${gg}ffn_gate.weight`, hfShape: [F, H] },
      { hfName: `${hf}mlp.up_proj.weight`, ggufName: `${gg}ffn_up.weight`, hfShape: [F, H] },
      { hfName: `${hf}mlp.down_proj.weight`, ggufName: `${gg}ffn_down.weight`, hfShape: [H, F] },
    );
  }
  list.push(norm("model.norm.weight", "output_norm.weight"));
  return list;
}

const COMPARE_CHUNK_ELEMENTS = 1 << 22;

/** Whether lm_head holds exactly the embedding values (compared in chunks, never both whole tensors at once). */
async function sameValues(ck: SafetensorsCheckpoint, a: string, b: string): Promise<boolean> {
  const ia = ck.info(a);
  const ib = ck.info(b);
  if (ia.elementCount !== ib.elementCount) return false;
  if (ia.dtype === ib.dtype) {
    const chunk = COMPARE_CHUNK_ELEMENTS * 4;
    for (let off = 0; off < ia.byteLength; off += chunk) {
      const len = Math.min(chunk, ia.byteLength - off);
      const [ra, rb] = await Promise.all([ck.readRaw(a, off, len), ck.readRaw(b, off, len)]);
      if (Buffer.compare(ra, rb) !== 0) return false;
    }
    return true;
  }
  for (let first = 0; first < ia.elementCount; first += COMPARE_CHUNK_ELEMENTS) {
    const n = Math.min(COMPARE_CHUNK_ELEMENTS, ia.elementCount - first);
    const [va, vb] = await Promise.all([ck.readFloat32(a, first, n), ck.readFloat32(b, first, n)]);
    for (let i = 0; i < n; i++) if (va[i] !== vb[i]) return false;
  }
  return true;
}

const IGNORED_SUFFIXES = [".rotary_emb.inv_freq", ".attention.masked_bias", ".attention.bias"];

export async function convertGemma(dir: string, config: JsonObject, opts: ConvertOptions): Promise<ConvertResult> {
  const configPath = resolve(dir, "config.json");
  const h = readHparams(config, configPath);
  if (h.numHeads % h.numKvHeads !== 0) {
    throw new ConvertError(`${configPath}: num_attention_heads (${h.numHeads}) must be a multiple of num_key_value_heads (${h.numKvHeads})`);
  }

  const vocab = await convertSentencePieceVocab(dir, config, h.vocabSize);
  const warnings = [...vocab.warnings];
  const vocabRows = vocab.tokens.length;

  const ck = await openCheckpoint(dir);
  try {
    const plan = expectedTensors(h, vocabRows);
    // lm_head.weight passes the plan check here; it must then equal the embeddings (below).
    checkPlan(ck, dir, plan, (n) => n === "lm_head.weight" || IGNORED_SUFFIXES.some((s) => n.endsWith(s)), "gemma");
    const lmHead: ConvertResult["lmHead"] = ck.has("lm_head.weight") ? "tied" : "absent";
    if (lmHead === "tied") {
      const emb = ck.info("model.embed_tokens.weight");
      const head = ck.info("lm_head.weight");
      const sameShape = head.shape.length === emb.shape.length && head.shape.every((d, i) => d === emb.shape[i]);
      if (!sameShape || !(await sameValues(ck, "lm_head.weight", "model.embed_tokens.weight"))) {
        throw new ConvertError(
          `${head.file} carries its own lm_head.weight, different from model.embed_tokens.weight; llama.cpp's gemma architecture always uses the embeddings as the output layer, so the converted model would score differently`,
        );
      }
    }

    const metadata: GgufMetadata = {
      ...generalMetadata("gemma", opts.name ?? basename(resolve(dir)), opts.outtype),
      "gemma.context_length": u32(h.contextLength),
      "gemma.embedding_length": u32(h.hiddenSize),
      "gemma.block_count": u32(h.numLayers),
      "gemma.feed_forward_length": u32(h.intermediateSize),
      "gemma.attention.head_count": u32(h.numHeads),
      "gemma.attention.head_count_kv": u32(h.numKvHeads),
      "gemma.attention.layer_norm_rms_epsilon": f32(h.rmsNormEps),
      "gemma.attention.key_length": u32(h.headDim),
      "gemma.attention.value_length": u32(h.headDim),
      ...(h.ropeTheta !== undefined ? { "gemma.rope.freq_base": f32(h.ropeTheta) } : {}),
      ...gemmaTokenizerMetadata(vocab),
    };

    const written = await writePlanned(ck, plan, metadata, opts, warnings);
    return {
      out: opts.out,
      architecture: "gemma",
      outtype: opts.outtype,
      tensorCount: written.tensorCount,
      tensorTypes: written.tensorTypes,
      lmHead,
      vocabSize: vocabRows,
      warnings,
    };
  } finally {
    await ck.close();
  }
}

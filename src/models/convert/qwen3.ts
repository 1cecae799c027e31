/**
 * Hugging Face `Qwen3ForCausalLM` (Qwen/Qwen3-Reranker-0.6B/4B/8B) → GGUF (`general.architecture =
 * qwen3`), mirroring llama.cpp's convert_hf_to_gguf.py `Qwen3Model` (on `Qwen2Model`, `TextModel`)
 * for the weights and its `_set_vocab_gpt2` for the byte-level BPE vocabulary read from
 * `tokenizer.json` (tokens, merges, added tokens typed CONTROL when special and USER_DEFINED
 * otherwise, pre-tokenizer "qwen2").
 *
 * One deliberate difference for rerankers: llama.cpp's converter replaces the LM head by a 2-row
 * `cls.output` ("yes", "no") and drops the LM head of the untied 4B/8B; this one keeps the whole
 * LM head (rerankd reads the "yes"/"no" logits and evaluates a query's tokens once for all its
 * documents), and marks a reranker with llama.cpp's rerank chat template, so rerankd recognises it.
 */
import { basename, join, resolve } from "node:path";
import { arr, bool, f32, str, u32, type GgufMetadata } from "../gguf/types.js";
import { readBpeTokenizerJson, TokenizerJsonError, type BpeTokenizerJson } from "../tokenizer-json/index.js";
import { ConvertError } from "./errors.js";
import { readJsonObject, type JsonObject } from "./hf-files.js";
import { checkPlan, configReader, generalMetadata, openCheckpoint, writePlanned, type DecoderHparams, type PlannedTensor } from "./tensor-plan.js";
import type { ConvertOptions, ConvertResult } from "./types.js";
import { looksSpecial, SPECIAL_KEYS, tokenContent, TokenType } from "./vocab.js";

/** llama.cpp's Qwen3Model writes this template for rerankers (tokenizer.chat_template.rerank). */
export const QWEN3_RERANK_TEMPLATE =
  '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n' +
  "<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n" +
  "<|im_start|>assistant\n<think>\n\n</think>\n\n";

interface Qwen3Hparams extends DecoderHparams {
  vocabSize: number;
  ropeTheta: number;
  tied: boolean;
}

function readHparams(config: JsonObject, configPath: string): Qwen3Hparams {
  const c = configReader(config, configPath);
  if (config.attention_bias === true) throw new ConvertError(`${configPath}: attention_bias is true; Qwen3's attention has no biases`);
  if (config.rope_scaling !== undefined && config.rope_scaling !== null) {
    throw new ConvertError(`${configPath}: rope_scaling ${JSON.stringify(config.rope_scaling)} is not supported by this converter`);
  }
  const act = config.hidden_act ?? "silu";
  if (act !== "silu") throw new ConvertError(`${configPath}: hidden_act ${JSON.stringify(act)}; llama.cpp's qwen3 graph computes SiLU`);
  const hiddenSize = c.int("hidden_size");
  const numHeads = c.int("num_attention_heads");
  return {
    vocabSize: c.int("vocab_size"),
    hiddenSize,
    intermediateSize: c.int("intermediate_size"),
    numLayers: c.int("num_hidden_layers"),
    numHeads,
    numKvHeads: c.int("num_key_value_heads", numHeads),
    headDim: c.int("head_dim", hiddenSize / numHeads),
    contextLength: c.int("max_position_embeddings"),
    rmsNormEps: c.num("rms_norm_eps", 1e-6),
    ropeTheta: c.num("rope_theta", 1000000),
    tied: config.tie_word_embeddings === true,
  };
}

function expectedTensors(h: Qwen3Hparams, lmHead: boolean): PlannedTensor[] {
  const H = h.hiddenSize;
  const q = h.numHeads * h.headDim;
  const kv = h.numKvHeads * h.headDim;
  const F = h.intermediateSize;
  const list: PlannedTensor[] = [{ hfName: "model.embed_tokens.weight", ggufName: "token_embd.weight", hfShape: [h.vocabSize, H] }];
  for (let b = 0; b < h.numLayers; b++) {
    const hf = `model.layers.${b}.`;
    const gg = `blk.${b}.`;
    list.push(
      { hfName: `${hf}input_layernorm.weight`, ggufName: `${gg}attn_norm.weight`, hfShape: [H], f32: true },
      { hfName: `${hf}self_attn.q_proj.weight`, ggufName: `${gg}attn_q.weight`, hfShape: [q, H] },
      { hfName: `${hf}self_attn.k_proj.weight`, ggufName: `${gg}attn_k.weight`, hfShape: [kv, H] },
      { hfName: `${hf}self_attn.v_proj.weight`, ggufName: `${gg}attn_v.weight`, hfShape: [kv, H] },
      { hfName: `${hf}self_attn.q_norm.weight`, ggufName: `${gg}attn_q_norm.weight`, hfShape: [h.headDim], f32: true },
      { hfName: `${hf}self_attn.k_norm.weight`, ggufName: `${gg}attn_k_norm.weight`, hfShape: [h.headDim], f32: true },
      { hfName: `${hf}self_attn.o_proj.weight`, ggufName: `${gg}attn_output.weight`, hfShape: [H, q] },
      { hfName: `${hf}post_attention_layernorm.weight`, ggufName: `${gg}ffn_norm.weight`, hfShape: [H], f32: true },
      { hfName: `${hf}mlp.gate_proj.weight`, ggufName: `${gg}ffn_gate.weight`, hfShape: [F, H] },
      { hfName: `${hf}mlp.up_proj.weight`, ggufName: `${gg}ffn_up.weight`, hfShape: [F, H] },
      { hfName: `${hf}mlp.down_proj.weight`, ggufName: `${gg}ffn_down.weight`, hfShape: [H, F] },
    );
  }
  list.push({ hfName: "model.norm.weight", ggufName: "output_norm.weight", hfShape: [H], f32: true });
  if (lmHead) list.push({ hfName: "lm_head.weight", ggufName: "output.weight", hfShape: [h.vocabSize, H] });
  return list;
}

/** llama.cpp's Qwen3Model._is_qwen3_reranker: by the model's README title or its names. */
async function looksLikeReranker(dir: string, config: JsonObject, name: string): Promise<boolean> {
  const hints = [basename(resolve(dir)), name, String(config._name_or_path ?? ""), String(config.model_type ?? "")].map((s) => s.toLowerCase());
  if (hints.some((h) => h.includes("qwen3-reranker"))) return true;
  try {
    const { readFile } = await import("node:fs/promises");
    const readme = (await readFile(join(dir, "README.md"), "utf8")).toLowerCase();
    return readme.includes("# qwen3-reranker");
  } catch {
    return false;
  }
}

export async function convertQwen3(dir: string, config: JsonObject, opts: ConvertOptions): Promise<ConvertResult> {
  const configPath = resolve(dir, "config.json");
  const h = readHparams(config, configPath);
  if (h.numHeads % h.numKvHeads !== 0) throw new ConvertError(`${configPath}: num_attention_heads (${h.numHeads}) must be a multiple of num_key_value_heads (${h.numKvHeads})`);
  const name = opts.name ?? basename(resolve(dir));
  const warnings: string[] = [];
  const vocab = await qwen3Vocabulary(dir, config, h.vocabSize, warnings);
  const reranker = await looksLikeReranker(dir, config, name);

  const ck = await openCheckpoint(dir);
  try {
    const hasLmHead = ck.has("lm_head.weight");
    if (!h.tied && !hasLmHead) throw new ConvertError(`${dir}: tie_word_embeddings is false but the checkpoint has no lm_head.weight`);
    // A tied checkpoint may still store lm_head.weight (a copy): llama.cpp then uses token_embd, as HF does.
    const plan = expectedTensors(h, !h.tied);
    checkPlan(ck, dir, plan, (n) => n.endsWith(".rotary_emb.inv_freq") || (h.tied && n === "lm_head.weight"), "qwen3");
    const metadata: GgufMetadata = {
      ...generalMetadata("qwen3", name, opts.outtype),
      "qwen3.context_length": u32(h.contextLength),
      "qwen3.embedding_length": u32(h.hiddenSize),
      "qwen3.block_count": u32(h.numLayers),
      "qwen3.feed_forward_length": u32(h.intermediateSize),
      "qwen3.attention.head_count": u32(h.numHeads),
      "qwen3.attention.head_count_kv": u32(h.numKvHeads),
      "qwen3.attention.key_length": u32(h.headDim),
      "qwen3.attention.value_length": u32(h.headDim),
      "qwen3.attention.layer_norm_rms_epsilon": f32(h.rmsNormEps),
      "qwen3.rope.freq_base": f32(h.ropeTheta),
      ...vocab,
      ...(reranker ? { "tokenizer.chat_template.rerank": str(QWEN3_RERANK_TEMPLATE) } : {}),
    };
    const written = await writePlanned(ck, plan, metadata, opts, warnings);
    return {
      out: opts.out,
      architecture: "qwen3",
      outtype: opts.outtype,
      tensorCount: written.tensorCount,
      tensorTypes: written.tensorTypes,
      lmHead: h.tied ? (hasLmHead ? "tied" : "absent") : "separate",
      vocabSize: h.vocabSize,
      warnings,
    };
  } finally {
    await ck.close();
  }
}

/** get_vocab_base + _set_vocab_gpt2 + SpecialVocab(load_merges=True), as GGUF tokenizer keys. */
async function qwen3Vocabulary(dir: string, config: JsonObject, vocabSize: number, warnings: string[]): Promise<GgufMetadata> {
  let bpe: BpeTokenizerJson;
  try {
    bpe = await readBpeTokenizerJson(join(dir, "tokenizer.json"));
  } catch (err) {
    if (err instanceof TokenizerJsonError) {
      throw new ConvertError(/ENOENT/.test(err.message) ? `missing tokenizer.json in ${dir}: Qwen3 checkpoints carry their BPE vocabulary there` : err.message, { cause: err });
    }
    throw err;
  }
  if (!bpe.byteLevel) throw new ConvertError(`${dir}/tokenizer.json is not a byte-level BPE tokenizer (no ByteLevel pre-tokenizer or decoder)`);
  const unexpectedNormalizers = bpe.normalizers.filter((n) => n !== "NFC");
  if (unexpectedNormalizers.length > 0) warnings.push(`tokenizer.json normalizers ${unexpectedNormalizers.join(", ")} are not applied by llama.cpp`);

  const byId = new Map<number, { token: string; type: number }>();
  for (const [token, id] of bpe.vocab) byId.set(id, { token, type: TokenType.NORMAL });
  for (const a of bpe.added) byId.set(a.id, { token: a.content, type: a.special || looksSpecial(a.content) ? TokenType.CONTROL : TokenType.USER_DEFINED });
  const highest = Math.max(...byId.keys());
  if (highest >= vocabSize) throw new ConvertError(`tokenizer.json has token id ${highest}, beyond vocab_size ${vocabSize}`);
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    const t = byId.get(i);
    tokens.push(t?.token ?? `[PAD${i}]`);
    types.push(t?.type ?? TokenType.UNUSED);
  }
  const md: GgufMetadata = {
    "tokenizer.ggml.model": str("gpt2"),
    "tokenizer.ggml.pre": str("qwen2"),
    "tokenizer.ggml.tokens": arr("string", tokens),
    "tokenizer.ggml.token_type": arr("i32", types),
    "tokenizer.ggml.merges": arr("string", bpe.merges),
  };
  // Special ids: tokenizer_config.json's named tokens found among the added tokens, then config.json's <type>_token_id.
  const tokenizerConfig = await readJsonObject(dir, "tokenizer_config.json");
  const special: Record<string, number> = {};
  for (const type of Object.keys(SPECIAL_KEYS)) {
    const content = tokenContent(tokenizerConfig?.[`${type}_token`]);
    const match = content === undefined ? undefined : bpe.added.find((a) => a.content === content);
    if (match) special[type] = match.id;
  }
  for (const type of Object.keys(SPECIAL_KEYS)) {
    const id = config[`${type}_token_id`];
    if (!(type in special) && typeof id === "number" && Number.isInteger(id) && id >= 0) special[type] = id;
  }
  for (const [type, id] of Object.entries(special)) {
    if (id < vocabSize) md[SPECIAL_KEYS[type]] = u32(id);
    else warnings.push(`special token ${type} id ${id} is out of range (vocab ${vocabSize}); skipped`);
  }
  const addBos = tokenizerConfig?.add_bos_token;
  md["tokenizer.ggml.add_bos_token"] = bool(addBos === true);
  if (typeof tokenizerConfig?.chat_template === "string") md["tokenizer.chat_template"] = str(tokenizerConfig.chat_template);
  return md;
}

/**
 * Hugging Face `XLMRobertaForSequenceClassification` (BAAI/bge-reranker-v2-m3, bge-reranker-base,
 * bge-reranker-large) → GGUF (`general.architecture = bert`), mirroring llama.cpp's
 * convert_hf_to_gguf.py `XLMRobertaModel` (on `BertModel`, `TextModel`):
 *
 *  - tokenizer "t5" (SentencePiece unigram) from `sentencepiece.bpe.model`, realigned as fairseq /
 *    Hugging Face number it: [<s>, <pad>, </s>, <unk>] + pieces[3:] (GGUF id = HF id = spm id + 1),
 *    with the model's normalization: its precompiled charsmap, dummy prefix and whitespace rules;
 *  - position embeddings from row pad_token_id + 1 on (RoBERTa's offset), context = rows left;
 *  - the classification head: classifier.dense → `cls`, classifier.out_proj → `cls.output`, and
 *    the classifier's labels (so llama.cpp knows it has one output);
 *  - norms, biases, position and token-type embeddings F32; the other matrices per outtype.
 */
import { basename, join, resolve } from "node:path";
import type { SentencePieceModel } from "../sentencepiece/index.js";
import { arr, bool, f32, str, u32, type GgufMetadata } from "../gguf/types.js";
import { ConvertError } from "./errors.js";
import { isJsonObject, readJsonObject, type JsonObject } from "./hf-files.js";
import { checkPlan, configReader, generalMetadata, openCheckpoint, writePlanned, type PlannedTensor } from "./tensor-plan.js";
import type { ConvertOptions, ConvertResult } from "./types.js";
import { readCheckpointSentencePiece, SPECIAL_KEYS, tokenContent, TokenType, tokenTypeOfPiece } from "./vocab.js";

/** XLM-R's fixed ids (fairseq's), used when the tokenizer files name none. */
const XLMR_DEFAULT_SPECIALS: Readonly<Record<string, number>> = { bos: 0, pad: 1, eos: 2, unk: 3, sep: 2, cls: 0 };

interface XlmrHparams {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  positionOffset: number;
  typeVocabSize: number;
  layerNormEps: number;
  labels: string[];
}

function readHparams(config: JsonObject, configPath: string): XlmrHparams {
  const c = configReader(config, configPath);
  const act = config.hidden_act ?? "gelu";
  if (act !== "gelu") throw new ConvertError(`${configPath}: hidden_act ${JSON.stringify(act)}; llama.cpp's bert graph computes GELU`);
  const posType = config.position_embedding_type ?? "absolute";
  if (posType !== "absolute") throw new ConvertError(`${configPath}: position_embedding_type ${JSON.stringify(posType)}; only "absolute" converts to llama.cpp's bert`);
  const pad = config.pad_token_id;
  const padId = typeof pad === "number" && Number.isInteger(pad) && pad >= 0 ? pad : 1;
  const id2label = config.id2label;
  const labels = isJsonObject(id2label)
    ? Object.entries(id2label)
        .sort(([a], [b]) => Number(a) - Number(b))
        .map(([, v]) => String(v))
    : ["LABEL_0"];
  return {
    vocabSize: c.int("vocab_size"),
    hiddenSize: c.int("hidden_size"),
    numLayers: c.int("num_hidden_layers"),
    numHeads: c.int("num_attention_heads"),
    intermediateSize: c.int("intermediate_size"),
    maxPositions: c.int("max_position_embeddings"),
    positionOffset: padId + 1,
    typeVocabSize: c.int("type_vocab_size", 1),
    layerNormEps: c.num("layer_norm_eps", 1e-5),
    labels,
  };
}

/** The checkpoint's tensors, with or without the "roberta." prefix of *ForSequenceClassification. */
function expectedTensors(h: XlmrHparams, prefix: string): PlannedTensor[] {
  const H = h.hiddenSize;
  const F = h.intermediateSize;
  const p = (name: string) => `${prefix}${name}`;
  const positions = h.maxPositions - h.positionOffset;
  const list: PlannedTensor[] = [
    { hfName: p("embeddings.word_embeddings.weight"), ggufName: "token_embd.weight", hfShape: [h.vocabSize, H] },
    { hfName: p("embeddings.token_type_embeddings.weight"), ggufName: "token_types.weight", hfShape: [h.typeVocabSize, H], f32: true },
    {
      hfName: p("embeddings.position_embeddings.weight"),
      ggufName: "position_embd.weight",
      hfShape: [h.maxPositions, H],
      f32: true,
      rows: { first: h.positionOffset, count: positions },
      outShape: [positions, H],
    },
    { hfName: p("embeddings.LayerNorm.weight"), ggufName: "token_embd_norm.weight", hfShape: [H], f32: true },
    { hfName: p("embeddings.LayerNorm.bias"), ggufName: "token_embd_norm.bias", hfShape: [H], f32: true },
  ];
  for (let i = 0; i < h.numLayers; i++) {
    const hf = p(`encoder.layer.${i}.`);
    const gg = `blk.${i}.`;
    const linear = (hfPart: string, ggPart: string, out: number, inDim: number) => [
      { hfName: `${hf}${hfPart}.weight`, ggufName: `${gg}${ggPart}.weight`, hfShape: [out, inDim] },
      { hfName: `${hf}${hfPart}.bias`, ggufName: `${gg}${ggPart}.bias`, hfShape: [out], f32: true },
    ];
    const norm = (hfPart: string, ggPart: string) => [
      { hfName: `${hf}${hfPart}.weight`, ggufName: `${gg}${ggPart}.weight`, hfShape: [H], f32: true },
      { hfName: `${hf}${hfPart}.bias`, ggufName: `${gg}${ggPart}.bias`, hfShape: [H], f32: true },
    ];
    list.push(
      ...linear("attention.self.query", "attn_q", H, H),
      ...linear("attention.self.key", "attn_k", H, H),
      ...linear("attention.self.value", "attn_v", H, H),
      ...linear("attention.output.dense", "attn_output", H, H),
      ...norm("attention.output.LayerNorm", "attn_output_norm"),
      ...linear("intermediate.dense", "ffn_up", F, H),
      ...linear("output.dense", "ffn_down", H, F),
      ...norm("output.LayerNorm", "layer_output_norm"),
    );
  }
  list.push(
    { hfName: "classifier.dense.weight", ggufName: "cls.weight", hfShape: [H, H] },
    { hfName: "classifier.dense.bias", ggufName: "cls.bias", hfShape: [H], f32: true },
    { hfName: "classifier.out_proj.weight", ggufName: "cls.output.weight", hfShape: [h.labels.length, H] },
    { hfName: "classifier.out_proj.bias", ggufName: "cls.output.bias", hfShape: [h.labels.length], f32: true },
  );
  return list;
}

/** Tensors a sequence-classification checkpoint may carry that llama.cpp does not use. */
const ignored = (name: string): boolean =>
  /(^|\.)embeddings\.position_ids$/.test(name) || /(^|\.)pooler\.dense\.(weight|bias)$/.test(name) || name.startsWith("lm_head.");

export async function convertXlmRoberta(dir: string, config: JsonObject, opts: ConvertOptions): Promise<ConvertResult> {
  const configPath = resolve(dir, "config.json");
  const h = readHparams(config, configPath);
  if (h.hiddenSize % h.numHeads !== 0) throw new ConvertError(`${configPath}: hidden_size ${h.hiddenSize} is not a multiple of num_attention_heads ${h.numHeads}`);
  if (h.maxPositions <= h.positionOffset) throw new ConvertError(`${configPath}: max_position_embeddings ${h.maxPositions} leaves no positions after the padding offset`);
  if (h.labels.length !== 1) {
    throw new ConvertError(`${configPath}: the classifier has ${h.labels.length} labels; a cross-encoder reranker has one`);
  }
  const warnings: string[] = [];
  const spm = await readXlmrSentencePiece(dir);
  const vocab = await xlmrVocabulary(dir, spm, h.vocabSize, warnings);

  const ck = await openCheckpoint(dir);
  try {
    const prefix = ck.has("roberta.embeddings.word_embeddings.weight") ? "roberta." : "";
    const plan = expectedTensors(h, prefix);
    checkPlan(ck, dir, plan, ignored, "bert");
    const metadata: GgufMetadata = {
      ...generalMetadata("bert", opts.name ?? basename(resolve(dir)), opts.outtype),
      "bert.context_length": u32(h.maxPositions - h.positionOffset),
      "bert.embedding_length": u32(h.hiddenSize),
      "bert.feed_forward_length": u32(h.intermediateSize),
      "bert.block_count": u32(h.numLayers),
      "bert.attention.head_count": u32(h.numHeads),
      "bert.attention.layer_norm_epsilon": f32(h.layerNormEps),
      "bert.attention.causal": bool(false),
      "bert.classifier.output_labels": arr("string", h.labels),
      ...vocab,
      "tokenizer.ggml.token_type_count": u32(h.typeVocabSize),
    };
    const written = await writePlanned(ck, plan, metadata, opts, warnings);
    return {
      out: opts.out,
      architecture: "bert",
      outtype: opts.outtype,
      tensorCount: written.tensorCount,
      tensorTypes: written.tensorTypes,
      lmHead: "absent",
      vocabSize: h.vocabSize,
      warnings,
    };
  } finally {
    await ck.close();
  }
}

async function readXlmrSentencePiece(dir: string): Promise<SentencePieceModel> {
  const path = join(dir, "sentencepiece.bpe.model");
  const spm = await readCheckpointSentencePiece(dir, "sentencepiece.bpe.model", "XLM-RoBERTa");
  if (spm.trainerSpec.modelType !== 1) {
    throw new ConvertError(`${path} is not a SentencePiece unigram model (model_type ${spm.trainerSpec.modelType}); XLM-RoBERTa's is`);
  }
  return spm;
}

/** _xlmroberta_set_vocab + SpecialVocab, as GGUF tokenizer keys. */
async function xlmrVocabulary(dir: string, spm: SentencePieceModel, configVocab: number, warnings: string[]): Promise<GgufMetadata> {
  const vocabSize = Math.max(configVocab, spm.pieces.length);
  if (vocabSize !== configVocab) throw new ConvertError(`sentencepiece.bpe.model has ${spm.pieces.length} pieces, more than vocab_size ${configVocab}`);
  let tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  let scores: number[] = new Array<number>(vocabSize).fill(-10000);
  let types: number[] = new Array<number>(vocabSize).fill(TokenType.UNUSED);
  spm.pieces.forEach((p, id) => {
    tokens[id] = p.piece;
    scores[id] = p.score;
    types[id] = tokenTypeOfPiece(p.type);
  });
  // "realign tokens (see HF tokenizer code)": fairseq's <s> <pad> </s> <unk>, then the pieces from spm id 3.
  tokens = ["<s>", "<pad>", "</s>", "<unk>", ...tokens.slice(3, -1)];
  scores = [0, 0, 0, 0, ...scores.slice(3, -1)];
  types = [TokenType.CONTROL, TokenType.CONTROL, TokenType.CONTROL, TokenType.UNKNOWN, ...types.slice(3, -1)];

  const md: GgufMetadata = {
    "tokenizer.ggml.model": str("t5"),
    "tokenizer.ggml.pre": str("default"),
    "tokenizer.ggml.tokens": arr("string", tokens),
    "tokenizer.ggml.scores": arr("f32", scores),
    "tokenizer.ggml.token_type": arr("i32", types),
    "tokenizer.ggml.add_space_prefix": bool(spm.normalizerSpec.addDummyPrefix),
    "tokenizer.ggml.remove_extra_whitespaces": bool(spm.normalizerSpec.removeExtraWhitespaces),
  };
  if (spm.normalizerSpec.precompiledCharsmap.byteLength > 0) {
    md["tokenizer.ggml.precompiled_charsmap"] = arr("u8", spm.normalizerSpec.precompiledCharsmap);
  }
  for (const [type, id] of Object.entries(await specialIds(dir, vocabSize, spm.pieces.length, warnings))) md[SPECIAL_KEYS[type]] = u32(id);
  // XLM-R's tokenizer.json post-processor is RobertaProcessing (<s> a </s></s> b </s>), which gguf-py's
  // SpecialVocab writes as add_bos + add_eos + add_sep; llama-server builds its rerank pairs from these.
  const tokenizerJson = await readJsonObject(dir, "tokenizer.json");
  const post = tokenizerJson?.post_processor;
  const processors = isJsonObject(post) ? (Array.isArray(post.processors) ? post.processors : [post]) : [];
  const roberta = tokenizerJson === undefined || processors.some((p) => isJsonObject(p) && p.type === "RobertaProcessing");
  if (roberta) for (const type of ["bos", "eos", "sep"] as const) md[`tokenizer.ggml.add_${type}_token`] = bool(true);
  return md;
}

/** Special token ids: named in tokenizer_config.json / special_tokens_map.json, found in tokenizer.json's added tokens; else XLM-R's fixed ids. */
async function specialIds(dir: string, vocabSize: number, spmPieces: number, warnings: string[]): Promise<Record<string, number>> {
  const tokenizerConfig = await readJsonObject(dir, "tokenizer_config.json");
  const specialMap = await readJsonObject(dir, "special_tokens_map.json");
  const tokenizerJson = await readJsonObject(dir, "tokenizer.json");
  const added = Array.isArray(tokenizerJson?.added_tokens) ? tokenizerJson.added_tokens : [];
  const decoder = isJsonObject(tokenizerConfig?.added_tokens_decoder) ? tokenizerConfig.added_tokens_decoder : {};
  const ids: Record<string, number> = {};
  for (const type of Object.keys(SPECIAL_KEYS)) {
    const content = tokenContent(tokenizerConfig?.[`${type}_token`]) ?? tokenContent(specialMap?.[`${type}_token`]);
    let id: number | undefined;
    if (content !== undefined) {
      const fromJson = added.find((a) => isJsonObject(a) && a.content === content);
      if (isJsonObject(fromJson) && typeof fromJson.id === "number") id = fromJson.id;
      const fromDecoder = Object.entries(decoder).find(([, d]) => isJsonObject(d) && d.content === content);
      if (id === undefined && fromDecoder) id = Number(fromDecoder[0]);
      if (id === undefined) id = ({ "<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3 } as Record<string, number>)[content];
    }
    id ??= XLMR_DEFAULT_SPECIALS[type];
    // XLM-R's <mask> follows the pieces (250001 in the real vocabulary); tokenizer.json names it when present.
    if (id === undefined && type === "mask" && content === "<mask>" && spmPieces + 1 < vocabSize) id = spmPieces + 1;
    if (id === undefined) continue;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      warnings.push(`special token ${type} id ${id} is out of range (vocab ${vocabSize}); skipped`);
      continue;
    }
    ids[type] = id;
  }
  return ids;
}

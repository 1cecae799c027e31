/**
 * A SentencePiece `tokenizer.model` (+ the HF tokenizer JSON files) as GGUF
 * tokenizer metadata, mirroring llama.cpp's convert_hf_to_gguf.py
 * (`_create_vocab_sentencepiece`, `_set_vocab_sentencepiece` and gguf-py's
 * `SpecialVocab`).
 */
import { join } from "node:path";
import { PieceType, readSentencePieceModel, SentencePieceModelError, type PieceTypeValue, type SentencePieceModel } from "../sentencepiece/index.js";
import { arr, bool, str, u32, type GgufMetadata } from "../gguf/types.js";
import { ConvertError } from "./errors.js";
import { isJsonObject, readJsonObject, type Json, type JsonObject } from "./hf-files.js";

/** llama.cpp's llama_token_type values (same numbers as SentencePiece's piece types). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface ConvertedVocab {
  tokens: string[];
  scores: Float32Array;
  types: Int32Array;
  /** Special token ids by type (bos, eos, unk, pad, ...). */
  special: Record<string, number>;
  addSpecial: Record<string, boolean>;
  chatTemplate?: string;
  spm: SentencePieceModel;
  warnings: string[];
}

/** Added tokens that llama.cpp treats as control tokens even when not marked special (does_token_look_special). */
export function looksSpecial(token: string): boolean {
  return (
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(token) ||
    (token.startsWith("<|") && token.endsWith("|>")) ||
    (token.startsWith("<｜") && token.endsWith("｜>")) ||
    (token.startsWith("<unused") && token.endsWith(">"))
  );
}

/**
 * As llama.cpp: unknown / control / unused / byte pieces keep their type; NORMAL and
 * USER_DEFINED pieces become NORMAL.
 */
export function tokenTypeOfPiece(type: PieceTypeValue): number {
  switch (type) {
    case PieceType.UNKNOWN: return TokenType.UNKNOWN;
    case PieceType.CONTROL: return TokenType.CONTROL;
    case PieceType.UNUSED: return TokenType.UNUSED;
    case PieceType.BYTE: return TokenType.BYTE;
    default: return TokenType.NORMAL;
  }
}

const DEFAULT_SPECIAL_TYPES = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"] as const;

/**
 * Gemma's extra special tokens (llama.cpp's GemmaModel sets these ids
 * unconditionally, with a TODO to do it only for CodeGemma): we set each only
 * when the token at that id is the one CodeGemma / Gemma put there.
 */
const GEMMA_EXTRA_SPECIALS: ReadonlyArray<{ key: string; id: number; text: string }> = [
  { key: "tokenizer.ggml.fim_pre_token_id", id: 67, text: "<|fim_prefix|>" },
  { key: "tokenizer.ggml.fim_mid_token_id", id: 68, text: "<|fim_middle|>" },
  { key: "tokenizer.ggml.fim_suf_token_id", id: 69, text: "<|fim_suffix|>" },
  { key: "tokenizer.ggml.fim_sep_token_id", id: 70, text: "<|file_separator|>" },
  { key: "tokenizer.ggml.eot_token_id", id: 107, text: "<end_of_turn>" },
];

/** GGUF key for each special token type (the spellings llama.cpp reads). */
export const SPECIAL_KEYS: Readonly<Record<string, string>> = {
  bos: "tokenizer.ggml.bos_token_id",
  eos: "tokenizer.ggml.eos_token_id",
  unk: "tokenizer.ggml.unknown_token_id",
  sep: "tokenizer.ggml.seperator_token_id",
  pad: "tokenizer.ggml.padding_token_id",
  cls: "tokenizer.ggml.cls_token_id",
  mask: "tokenizer.ggml.mask_token_id",
};

/** A special token named in tokenizer_config.json / special_tokens_map.json: a bare string or an AddedToken object. */
export function tokenContent(entry: Json | undefined): string | undefined {
  if (typeof entry === "string") return entry;
  if (isJsonObject(entry) && typeof entry.content === "string") return entry.content;
  return undefined;
}

/** Reads the checkpoint's SentencePiece model `file`; a missing one is named with the family that carries it. */
export async function readCheckpointSentencePiece(dir: string, file: string, family: string): Promise<SentencePieceModel> {
  const path = join(dir, file);
  try {
    return await readSentencePieceModel(path);
  } catch (err) {
    if (err instanceof SentencePieceModelError && /ENOENT/.test(err.message)) {
      throw new ConvertError(`missing ${file} in ${dir}: ${family} checkpoints carry their SentencePiece vocabulary there`, { cause: err });
    }
    throw new ConvertError(`cannot use ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Builds the vocabulary. `vocabSize` is config.json's `vocab_size` when
 * present (the embedding row count); pieces beyond it are dropped and missing
 * ids are padded with `[PAD<i>]` tokens of type UNUSED, as llama.cpp does.
 */
export async function convertSentencePieceVocab(dir: string, config: JsonObject, vocabSizeHint: number | undefined): Promise<ConvertedVocab> {
  const spm = await readCheckpointSentencePiece(dir, "tokenizer.model", "Gemma");
  const warnings: string[] = [];
  const vocabSize = vocabSizeHint ?? spm.pieces.length;

  const tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const scores = new Float32Array(vocabSize).fill(-10000);
  const types = new Int32Array(vocabSize).fill(TokenType.UNUSED);

  if (spm.pieces.length > vocabSize) {
    warnings.push(`tokenizer.model has ${spm.pieces.length} pieces but vocab_size is ${vocabSize}: ignoring pieces from id ${vocabSize}`);
  }
  for (let id = 0; id < Math.min(vocabSize, spm.pieces.length); id++) {
    const p = spm.pieces[id];
    tokens[id] = p.piece;
    scores[id] = p.score;
    // User-defined pieces are re-typed below when tokenizer_config.json lists them as added tokens.
    types[id] = tokenTypeOfPiece(p.type);
  }

  const addedTokens = await readJsonObject(dir, "added_tokens.json");
  if (addedTokens) {
    for (const [text, idJson] of Object.entries(addedTokens)) {
      if (typeof idJson !== "number" || !Number.isInteger(idJson) || idJson < 0) continue;
      if (idJson >= vocabSize) {
        warnings.push(`added_tokens.json: ignoring token ${idJson} (${JSON.stringify(text)}), out of range`);
        continue;
      }
      tokens[idJson] = text;
      scores[idJson] = -1000;
      types[idJson] = TokenType.USER_DEFINED;
    }
  }

  const tokenizerConfig = await readJsonObject(dir, "tokenizer_config.json");
  const decoder = tokenizerConfig?.added_tokens_decoder;
  if (isJsonObject(decoder)) {
    for (const [idText, data] of Object.entries(decoder)) {
      const id = Number(idText);
      if (!Number.isInteger(id) || id < 0 || !isJsonObject(data) || typeof data.content !== "string") continue;
      if (id >= vocabSize) {
        warnings.push(`tokenizer_config.json: ignoring added token ${id} (${JSON.stringify(data.content)}), out of range`);
        continue;
      }
      let token = data.content;
      if (data.special === true || looksSpecial(token)) {
        types[id] = TokenType.CONTROL;
      } else {
        // llama.cpp's tokenizer expects user-defined tokens pre-normalized (spaces, not "▁").
        token = token.replaceAll("\u2581", " ");
        types[id] = TokenType.USER_DEFINED;
      }
      scores[id] = -1000;
      tokens[id] = token;
    }
  }

  // Special token ids, first source wins (gguf-py SpecialVocab order):
  // tokenizer.json's added tokens named by tokenizer_config.json, then config.json's
  // <type>_token_id. Beyond llama.cpp: then tokenizer_config.json's own
  // added_tokens_decoder, then the SentencePiece model's trainer ids.
  const special: Record<string, number> = {};
  const setSpecial = (type: string, id: Json | number | undefined) => {
    if (type in special || typeof id !== "number" || !Number.isInteger(id)) return;
    if (id < 0) {
      if (id === -1) return;
      throw new ConvertError(`invalid id ${id} for special token ${type}`);
    }
    if (id < vocabSize) special[type] = id;
    else warnings.push(`special token ${type} id ${id} is out of range (vocab ${vocabSize}); skipped`);
  };
  const tokenizerJson = await readJsonObject(dir, "tokenizer.json");
  const hfAdded = tokenizerJson?.added_tokens;
  if (tokenizerConfig && Array.isArray(hfAdded)) {
    for (const type of DEFAULT_SPECIAL_TYPES) {
      const content = tokenContent(tokenizerConfig[`${type}_token`]);
      if (content === undefined) continue;
      const match = hfAdded.find((a) => isJsonObject(a) && a.content === content);
      if (isJsonObject(match)) setSpecial(type, match.id);
    }
  }
  for (const type of DEFAULT_SPECIAL_TYPES) setSpecial(type, config[`${type}_token_id`]);
  if (tokenizerConfig && isJsonObject(decoder)) {
    for (const type of DEFAULT_SPECIAL_TYPES) {
      const content = tokenContent(tokenizerConfig[`${type}_token`]);
      if (content === undefined) continue;
      const match = Object.entries(decoder).find(([, d]) => isJsonObject(d) && d.content === content);
      if (match) setSpecial(type, Number(match[0]));
    }
  }
  const ts = spm.trainerSpec;
  setSpecial("bos", ts.bosId);
  setSpecial("eos", ts.eosId);
  setSpecial("unk", ts.unkId);
  setSpecial("pad", ts.padId);

  const addSpecial: Record<string, boolean> = {};
  let chatTemplate: string | undefined;
  if (tokenizerConfig) {
    for (const type of DEFAULT_SPECIAL_TYPES) {
      const v = tokenizerConfig[`add_${type}_token`];
      if (typeof v === "boolean") addSpecial[type] = v;
    }
    if (typeof tokenizerConfig.chat_template === "string") chatTemplate = tokenizerConfig.chat_template;
  }

  return { tokens, scores, types, special, addSpecial, chatTemplate, spm, warnings };
}

/** The tokenizer.* GGUF keys for a converted Gemma vocabulary. */
export function gemmaTokenizerMetadata(v: ConvertedVocab): GgufMetadata {
  const md: GgufMetadata = {
    "tokenizer.ggml.model": str("llama"),
    "tokenizer.ggml.pre": str("default"),
    "tokenizer.ggml.tokens": arr("string", v.tokens),
    "tokenizer.ggml.scores": arr("f32", v.scores),
    "tokenizer.ggml.token_type": arr("i32", v.types),
  };
  for (const [type, id] of Object.entries(v.special)) {
    const key = SPECIAL_KEYS[type];
    if (key) md[key] = u32(id);
  }
  for (const extra of GEMMA_EXTRA_SPECIALS) {
    if (extra.id < v.tokens.length && v.tokens[extra.id] === extra.text) md[extra.key] = u32(extra.id);
  }
  for (const [type, value] of Object.entries(v.addSpecial)) {
    if (type === "bos" || type === "eos" || type === "sep") md[`tokenizer.ggml.add_${type}_token`] = bool(value);
  }
  // Gemma's normalizer adds no dummy prefix; llama.cpp's converter states it explicitly.
  md["tokenizer.ggml.add_space_prefix"] = bool(false);
  if (v.chatTemplate !== undefined) md["tokenizer.chat_template"] = str(v.chatTemplate);
  return md;
}

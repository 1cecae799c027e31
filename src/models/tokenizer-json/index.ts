/**
 * A Hugging Face `tokenizer.json` with a byte-level BPE model (GPT-2, Qwen2/Qwen3, Llama-3 style),
 * read into what a GGUF vocabulary needs: tokens by id, merges in rank order, added tokens with
 * their special flag, and the pre-tokenizer and normalizer it declares.
 */
import { readFile } from "node:fs/promises";

export class TokenizerJsonError extends Error {
  override name = "TokenizerJsonError";
}

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

export interface BpeTokenizerJson {
  /** token text → id, from model.vocab. */
  vocab: Map<string, number>;
  /** Merges in rank order, as "left right" (GGUF's tokenizer.ggml.merges form). */
  merges: string[];
  added: AddedToken[];
  /** The normalizer's type(s), e.g. ["NFC"]; empty when none. */
  normalizers: string[];
  /** The Split pre-tokenizer's regex, when there is one. */
  splitPattern: string | null;
  /** Whether a ByteLevel pre-tokenizer or decoder is present (byte-level BPE). */
  byteLevel: boolean;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const isObject = (v: Json | undefined): v is { [key: string]: Json } => typeof v === "object" && v !== null && !Array.isArray(v);

export async function readBpeTokenizerJson(path: string): Promise<BpeTokenizerJson> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new TokenizerJsonError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let root: Json;
  try {
    root = JSON.parse(text) as Json;
  } catch (err) {
    throw new TokenizerJsonError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseBpeTokenizerJson(root, path);
}

export function parseBpeTokenizerJson(root: unknown, where = "tokenizer.json"): BpeTokenizerJson {
  const json = root as Json;
  if (!isObject(json)) throw new TokenizerJsonError(`${where} does not hold a JSON object`);
  const model = json.model;
  if (!isObject(model) || model.type !== "BPE") {
    throw new TokenizerJsonError(`${where}: model.type is ${JSON.stringify(isObject(model) ? model.type : null)}, not "BPE"`);
  }
  if (!isObject(model.vocab)) throw new TokenizerJsonError(`${where}: model.vocab is not an object`);
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(model.vocab)) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) throw new TokenizerJsonError(`${where}: vocab id of ${JSON.stringify(token)} is ${JSON.stringify(id)}`);
    vocab.set(token, id);
  }
  if (!Array.isArray(model.merges)) throw new TokenizerJsonError(`${where}: model.merges is not a list`);
  const merges = model.merges.map((m, i) => {
    // Older files write "a b"; newer ones ["a", "b"] (tokens may then contain spaces, which GGUF's form cannot carry).
    if (typeof m === "string") return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      if (m[0].includes(" ") || m[1].includes(" ")) throw new TokenizerJsonError(`${where}: merge ${i} has a token with a space, which GGUF merges cannot represent`);
      return `${m[0]} ${m[1]}`;
    }
    throw new TokenizerJsonError(`${where}: merge ${i} is ${JSON.stringify(m)}`);
  });
  const added: AddedToken[] = [];
  if (Array.isArray(json.added_tokens)) {
    for (const a of json.added_tokens) {
      if (!isObject(a) || typeof a.id !== "number" || typeof a.content !== "string") throw new TokenizerJsonError(`${where}: malformed added token ${JSON.stringify(a)}`);
      added.push({ id: a.id, content: a.content, special: a.special === true });
    }
  }
  const normalizers: string[] = [];
  const collectNormalizers = (n: Json | undefined) => {
    if (!isObject(n)) return;
    if (n.type === "Sequence" && Array.isArray(n.normalizers)) n.normalizers.forEach(collectNormalizers);
    else if (typeof n.type === "string") normalizers.push(n.type);
  };
  collectNormalizers(json.normalizer);
  let splitPattern: string | null = null;
  let byteLevel = isObject(json.decoder) && json.decoder.type === "ByteLevel";
  const visitPre = (p: Json | undefined) => {
    if (!isObject(p)) return;
    if (p.type === "Sequence" && Array.isArray(p.pretokenizers)) p.pretokenizers.forEach(visitPre);
    if (p.type === "ByteLevel") byteLevel = true;
    if (p.type === "Split" && isObject(p.pattern)) {
      const pattern = p.pattern.Regex ?? p.pattern.String;
      if (typeof pattern === "string") splitPattern = pattern;
    }
  };
  visitPre(json.pre_tokenizer);
  return { vocab, merges, added, normalizers, splitPattern, byteLevel };
}

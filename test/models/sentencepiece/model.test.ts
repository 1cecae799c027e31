import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import {
  ModelType,
  PieceType,
  SentencePieceModelError,
  parseSentencePieceModel,
  readSentencePieceModel,
} from "../../../src/models/sentencepiece/index.js";
import { ensureTokenizerModel, spmUnavailableReason, SPM_IDS } from "../../support/hf-checkpoint.js";

// --- a tiny protobuf encoder for hand-made models -------------------------
function varint(n: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
const tag = (field: number, wire: number) => varint((field << 3) | wire);
const vField = (field: number, n: number | bigint) => [...tag(field, 0), ...varint(n)];
const lenField = (field: number, bytes: number[]) => [...tag(field, 2), ...varint(bytes.length), ...bytes];
const strField = (field: number, s: string) => lenField(field, [...new TextEncoder().encode(s)]);
const floatField = (field: number, f: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, f, true);
  return [...tag(field, 5), ...b];
};
const piece = (p: string, score: number, type?: number) =>
  lenField(1, [...strField(1, p), ...floatField(2, score), ...(type === undefined ? [] : vField(3, type))]);

test("decodes a hand-made ModelProto, including negative int32 ids and unknown fields", () => {
  const bytes = Uint8Array.from([
    ...piece("<unk>", 0, 2),
    ...piece("<s>", 0, 3),
    ...piece("▁hello", -1.5), // type omitted: NORMAL
    ...piece("<0x41>", 0, 6),
    ...vField(99, 12345), // unknown top-level varint
    ...lenField(2, [...vField(3, 2), ...vField(35, 1), ...vField(40, 0), ...vField(41, 1), ...vField(42, -1), ...vField(43, -1), ...strField(45, "<unk>"), ...lenField(777, [1, 2, 3]), ...floatField(10, 0.9995)]),
    ...lenField(3, [...strField(1, "identity"), ...vField(3, 0), ...vField(4, 0)]),
    ...[...tag(100, 1), 1, 2, 3, 4, 5, 6, 7, 8], // unknown fixed64
  ]);
  const m = parseSentencePieceModel(bytes);
  assert.deepEqual(m.pieces, [
    { piece: "<unk>", score: 0, type: PieceType.UNKNOWN },
    { piece: "<s>", score: 0, type: PieceType.CONTROL },
    { piece: "▁hello", score: -1.5, type: PieceType.NORMAL },
    { piece: "<0x41>", score: 0, type: PieceType.BYTE },
  ]);
  assert.equal(m.trainerSpec.modelType, ModelType.BPE);
  assert.equal(m.trainerSpec.byteFallback, true);
  assert.equal(m.trainerSpec.eosId, -1);
  assert.equal(m.trainerSpec.padId, -1);
  assert.equal(m.trainerSpec.bosId, 1);
  assert.equal(m.normalizerSpec.name, "identity");
  assert.equal(m.normalizerSpec.addDummyPrefix, false);
  assert.equal(m.normalizerSpec.removeExtraWhitespaces, false);
  assert.equal(m.normalizerSpec.escapeWhitespaces, true); // proto default
});

test("defaults apply when specs are absent", () => {
  const m = parseSentencePieceModel(Uint8Array.from(piece("a", 0)));
  assert.equal(m.trainerSpec.modelType, ModelType.UNIGRAM);
  assert.deepEqual([m.trainerSpec.unkId, m.trainerSpec.bosId, m.trainerSpec.eosId, m.trainerSpec.padId], [0, 1, 2, -1]);
  assert.equal(m.normalizerSpec.addDummyPrefix, true);
});

test("malformed input is rejected clearly", () => {
  const good = piece("hello", -1, 1);
  assert.throws(() => parseSentencePieceModel(Uint8Array.from(good.slice(0, good.length - 3))), /truncated/);
  assert.throws(() => parseSentencePieceModel(Uint8Array.from([...tag(1, 0), 5])), /wire type 0, expected 2/);
  assert.throws(() => parseSentencePieceModel(Uint8Array.from(lenField(1, floatField(2, 1)))), /piece 0 has no text/);
  assert.throws(() => parseSentencePieceModel(Uint8Array.from(piece("x", 0, 9))), /unknown type 9/);
  assert.throws(() => parseSentencePieceModel(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), /malformed varint/);
  assert.throws(() => parseSentencePieceModel(new Uint8Array(0)), /no pieces/);
  assert.throws(() => parseSentencePieceModel(Uint8Array.from([...tag(1, 3)])), SentencePieceModelError);
});

test("decodes a tokenizer.model trained by spm_train, matching spm_train's own .vocab listing", async (t) => {
  const reason = spmUnavailableReason();
  if (reason) return t.skip(reason);
  const { model: modelPath, vocab } = await ensureTokenizerModel();
  const m = await readSentencePieceModel(modelPath);

  // spm_train's .vocab: "piece\tscore" per piece; the "\n" piece spans two lines.
  const text = await readFile(vocab, "utf8");
  const entries: Array<[string, number]> = [];
  const lines = text.split("\n");
  lines.pop();
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === "" && lines[i + 1]?.startsWith("\t")) {
      entries.push(["\n", Number(lines[i + 1].slice(1))]);
      i++;
      continue;
    }
    const tab = lines[i].lastIndexOf("\t");
    entries.push([lines[i].slice(0, tab), Number(lines[i].slice(tab + 1))]);
  }
  assert.equal(m.pieces.length, entries.length);
  m.pieces.forEach((p, i) => {
    assert.equal(p.piece, entries[i][0], `piece ${i}`);
    assert.equal(p.score, entries[i][1], `score of piece ${i}`);
  });

  assert.equal(m.pieces[SPM_IDS.pad].type, PieceType.CONTROL);
  assert.equal(m.pieces[SPM_IDS.eos].type, PieceType.CONTROL);
  assert.equal(m.pieces[SPM_IDS.bos].type, PieceType.CONTROL);
  assert.equal(m.pieces[SPM_IDS.unk].type, PieceType.UNKNOWN);
  assert.equal(m.pieces[SPM_IDS.newline].type, PieceType.USER_DEFINED);
  const bytes = m.pieces.filter((p) => p.type === PieceType.BYTE);
  assert.equal(bytes.length, 256);
  assert.equal(bytes[0].piece, "<0x00>");
  assert.equal(bytes[255].piece, "<0xFF>");
  assert.ok(m.pieces.some((p) => p.piece === "Yes" && p.type === PieceType.NORMAL));

  assert.equal(m.trainerSpec.modelType, ModelType.BPE);
  assert.equal(m.trainerSpec.byteFallback, true);
  assert.equal(m.trainerSpec.splitDigits, true);
  assert.equal(m.trainerSpec.allowWhitespaceOnlyPieces, true);
  assert.deepEqual(
    [m.trainerSpec.padId, m.trainerSpec.eosId, m.trainerSpec.bosId, m.trainerSpec.unkId],
    [SPM_IDS.pad, SPM_IDS.eos, SPM_IDS.bos, SPM_IDS.unk],
  );
  assert.deepEqual([m.trainerSpec.bosPiece, m.trainerSpec.eosPiece], ["<bos>", "<eos>"]);
  assert.equal(m.normalizerSpec.name, "identity");
  assert.equal(m.normalizerSpec.addDummyPrefix, false);
  assert.equal(m.normalizerSpec.removeExtraWhitespaces, false);
  assert.equal(m.normalizerSpec.escapeWhitespaces, true);
});

test("a missing file names the path", async () => {
  await assert.rejects(readSentencePieceModel("/nonexistent/tokenizer.model"), /cannot read SentencePiece model \/nonexistent\/tokenizer.model: ENOENT/);
});

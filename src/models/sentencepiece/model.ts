/**
 * Decoder for SentencePiece's `ModelProto` (the `tokenizer.model` file), for
 * the fields a GGUF conversion needs. Field numbers follow sentencepiece's
 * `sentencepiece_model.proto`; unknown fields are skipped.
 */
import { readFile } from "node:fs/promises";
import { ProtoReader, ProtobufError, WIRE_I32, WIRE_LEN, WIRE_VARINT } from "./protobuf.js";

/** `ModelProto.SentencePiece.Type`. */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type PieceTypeValue = (typeof PieceType)[keyof typeof PieceType];

/** `TrainerSpec.ModelType`. */
export const ModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface SentencePiece {
  piece: string;
  score: number;
  type: PieceTypeValue;
}

export interface TrainerSpec {
  modelType: number;
  vocabSize: number;
  byteFallback: boolean;
  splitDigits: boolean;
  treatWhitespaceAsSuffix: boolean;
  allowWhitespaceOnlyPieces: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
}

export interface NormalizerSpec {
  name: string;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  /** Byte length of `precompiled_charsmap` (0 when absent): non-zero means a normalization table is in use. */
  precompiledCharsmapBytes: number;
  /** The `precompiled_charsmap` itself (empty when absent): llama.cpp's UGM tokenizer normalizes with it. */
  precompiledCharsmap: Uint8Array;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
}

export class SentencePieceModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SentencePieceModelError";
  }
}

function defaultTrainerSpec(): TrainerSpec {
  // Defaults as declared in sentencepiece_model.proto.
  return {
    modelType: ModelType.UNIGRAM,
    vocabSize: 8000,
    byteFallback: false,
    splitDigits: false,
    treatWhitespaceAsSuffix: false,
    allowWhitespaceOnlyPieces: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkPiece: "<unk>",
    bosPiece: "<s>",
    eosPiece: "</s>",
    padPiece: "<pad>",
  };
}

function defaultNormalizerSpec(): NormalizerSpec {
  return { name: "", addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true, precompiledCharsmapBytes: 0, precompiledCharsmap: new Uint8Array(0) };
}

function readPiece(r: ProtoReader, index: number): SentencePiece {
  let piece: string | undefined;
  let score = 0;
  let type: number = PieceType.NORMAL;
  while (!r.done) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        r.expect(wire, WIRE_LEN, field);
        piece = r.string();
        break;
      case 2:
        r.expect(wire, WIRE_I32, field);
        score = r.float();
        break;
      case 3:
        r.expect(wire, WIRE_VARINT, field);
        type = r.int32();
        break;
      default:
        r.skip(wire, field);
    }
  }
  if (piece === undefined) throw new SentencePieceModelError(`piece ${index} has no text`);
  if (type < PieceType.NORMAL || type > PieceType.BYTE) throw new SentencePieceModelError(`piece ${index} (${JSON.stringify(piece)}) has unknown type ${type}`);
  return { piece, score, type: type as PieceTypeValue };
}

function readTrainerSpec(r: ProtoReader): TrainerSpec {
  const s = defaultTrainerSpec();
  while (!r.done) {
    const [field, wire] = r.tag();
    const varint = (): number => {
      r.expect(wire, WIRE_VARINT, field);
      return r.int32();
    };
    const str = (): string => {
      r.expect(wire, WIRE_LEN, field);
      return r.string();
    };
    switch (field) {
      case 3: s.modelType = varint(); break;
      case 4: s.vocabSize = varint(); break;
      case 24: s.treatWhitespaceAsSuffix = varint() !== 0; break;
      case 25: s.splitDigits = varint() !== 0; break;
      case 26: s.allowWhitespaceOnlyPieces = varint() !== 0; break;
      case 35: s.byteFallback = varint() !== 0; break;
      case 40: s.unkId = varint(); break;
      case 41: s.bosId = varint(); break;
      case 42: s.eosId = varint(); break;
      case 43: s.padId = varint(); break;
      case 45: s.unkPiece = str(); break;
      case 46: s.bosPiece = str(); break;
      case 47: s.eosPiece = str(); break;
      case 48: s.padPiece = str(); break;
      default: r.skip(wire, field);
    }
  }
  return s;
}

function readNormalizerSpec(r: ProtoReader): NormalizerSpec {
  const s = defaultNormalizerSpec();
  while (!r.done) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        r.expect(wire, WIRE_LEN, field);
        s.name = r.string();
        break;
      case 2:
        r.expect(wire, WIRE_LEN, field);
        s.precompiledCharsmap = r.bytes().slice();
        s.precompiledCharsmapBytes = s.precompiledCharsmap.byteLength;
        break;
      case 3:
        r.expect(wire, WIRE_VARINT, field);
        s.addDummyPrefix = r.bool();
        break;
      case 4:
        r.expect(wire, WIRE_VARINT, field);
        s.removeExtraWhitespaces = r.bool();
        break;
      case 5:
        r.expect(wire, WIRE_VARINT, field);
        s.escapeWhitespaces = r.bool();
        break;
      default:
        r.skip(wire, field);
    }
  }
  return s;
}

/** Decodes a serialized `ModelProto`. Throws SentencePieceModelError on malformed input. */
export function parseSentencePieceModel(buf: Uint8Array): SentencePieceModel {
  const pieces: SentencePiece[] = [];
  let trainerSpec = defaultTrainerSpec();
  let normalizerSpec = defaultNormalizerSpec();
  try {
    const r = new ProtoReader(buf, 0, buf.byteLength, "ModelProto");
    while (!r.done) {
      const [field, wire] = r.tag();
      switch (field) {
        case 1:
          r.expect(wire, WIRE_LEN, field);
          pieces.push(readPiece(r.message(`SentencePiece #${pieces.length}`), pieces.length));
          break;
        case 2:
          r.expect(wire, WIRE_LEN, field);
          trainerSpec = readTrainerSpec(r.message("TrainerSpec"));
          break;
        case 3:
          r.expect(wire, WIRE_LEN, field);
          normalizerSpec = readNormalizerSpec(r.message("NormalizerSpec"));
          break;
        default:
          r.skip(wire, field);
      }
    }
  } catch (err) {
    if (err instanceof ProtobufError) throw new SentencePieceModelError(`malformed SentencePiece model: ${err.message}`);
    throw err;
  }
  if (pieces.length === 0) throw new SentencePieceModelError("SentencePiece model has no pieces");
  return { pieces, trainerSpec, normalizerSpec };
}

/** Reads and decodes a `tokenizer.model` file; errors name the file. */
export async function readSentencePieceModel(path: string): Promise<SentencePieceModel> {
  let buf: Uint8Array;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new SentencePieceModelError(`cannot read SentencePiece model ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return parseSentencePieceModel(buf);
  } catch (err) {
    if (err instanceof SentencePieceModelError) throw new SentencePieceModelError(`${path}: ${err.message}`);
    throw err;
  }
}

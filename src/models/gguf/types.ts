// GGUF / GGML type vocabulary shared by the writer, the reader and the converters.
// Numbers follow ggml.h (enum ggml_type) and gguf.h (enum gguf_type) so they can be
// written to and read from files verbatim.

/** Tensor element types this code can encode (and decode). Values are ggml's enum ggml_type. */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q8_0: 8,
  BF16: 30,
} as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

/** Storage layout of a tensor type: `blockSize` elements occupy `bytesPerBlock` bytes. */
export interface GgmlTypeLayout {
  readonly name: string;
  readonly blockSize: number;
  readonly bytesPerBlock: number;
}

export const GGML_TYPE_LAYOUTS: Readonly<Record<GgmlType, GgmlTypeLayout>> = {
  [GgmlType.F32]: { name: "F32", blockSize: 1, bytesPerBlock: 4 },
  [GgmlType.F16]: { name: "F16", blockSize: 1, bytesPerBlock: 2 },
  [GgmlType.Q8_0]: { name: "Q8_0", blockSize: 32, bytesPerBlock: 34 },
  [GgmlType.BF16]: { name: "BF16", blockSize: 1, bytesPerBlock: 2 },
};

export function isKnownGgmlType(type: number): type is GgmlType {
  return Object.prototype.hasOwnProperty.call(GGML_TYPE_LAYOUTS, type);
}

/** Bytes needed to store `elementCount` elements of `type` (elementCount must be a whole number of blocks). */
export function ggmlTensorByteSize(type: GgmlType, elementCount: number): number {
  const layout = GGML_TYPE_LAYOUTS[type];
  if (elementCount % layout.blockSize !== 0) {
    throw new Error(`${layout.name} needs a multiple of ${layout.blockSize} elements, got ${elementCount}`);
  }
  return (elementCount / layout.blockSize) * layout.bytesPerBlock;
}

// ---------------------------------------------------------------------------
// Metadata values. The caller always names the exact on-disk GGUF type, because
// llama.cpp's get_key() rejects a key whose stored type differs from what it expects
// (e.g. a u32 hparam written as i32 or f64).

/** On-disk codes of gguf_type. */
export const GGUF_VALUE_TYPE_CODES = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;
export type GgufValueTypeName = keyof typeof GGUF_VALUE_TYPE_CODES;

export type GgufNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
export type GgufBigIntType = "u64" | "i64";
export type GgufScalarType = GgufNumberType | GgufBigIntType | "bool" | "string";

export type GgufNumberValue = { type: GgufNumberType; value: number };
export type GgufBigIntValue = { type: GgufBigIntType; value: bigint };
export type GgufBoolValue = { type: "bool"; value: boolean };
export type GgufStringValue = { type: "string"; value: string };
export type GgufScalarValue = GgufNumberValue | GgufBigIntValue | GgufBoolValue | GgufStringValue;

export type GgufArrayValue =
  | { type: "array"; itemType: GgufNumberType; value: ArrayLike<number> }
  | { type: "array"; itemType: GgufBigIntType; value: ArrayLike<bigint> }
  | { type: "array"; itemType: "bool"; value: ArrayLike<boolean> }
  | { type: "array"; itemType: "string"; value: ArrayLike<string> }
  | { type: "array"; itemType: "array"; value: ArrayLike<GgufArrayValue> };

export type GgufValue = GgufScalarValue | GgufArrayValue;
export type GgufMetadata = Record<string, GgufValue>;

// Short constructors so metadata tables stay readable: { "gemma.block_count": u32(18) }.
export const u8 = (value: number): GgufNumberValue => ({ type: "u8", value });
export const i8 = (value: number): GgufNumberValue => ({ type: "i8", value });
export const u16 = (value: number): GgufNumberValue => ({ type: "u16", value });
export const i16 = (value: number): GgufNumberValue => ({ type: "i16", value });
export const u32 = (value: number): GgufNumberValue => ({ type: "u32", value });
export const i32 = (value: number): GgufNumberValue => ({ type: "i32", value });
export const f32 = (value: number): GgufNumberValue => ({ type: "f32", value });
export const f64 = (value: number): GgufNumberValue => ({ type: "f64", value });
export const u64 = (value: number | bigint): GgufBigIntValue => ({ type: "u64", value: BigInt(value) });
export const i64 = (value: number | bigint): GgufBigIntValue => ({ type: "i64", value: BigInt(value) });
export const bool = (value: boolean): GgufBoolValue => ({ type: "bool", value });
export const str = (value: string): GgufStringValue => ({ type: "string", value });

type ArrayItems = {
  u8: ArrayLike<number>;
  i8: ArrayLike<number>;
  u16: ArrayLike<number>;
  i16: ArrayLike<number>;
  u32: ArrayLike<number>;
  i32: ArrayLike<number>;
  f32: ArrayLike<number>;
  f64: ArrayLike<number>;
  u64: ArrayLike<bigint>;
  i64: ArrayLike<bigint>;
  bool: ArrayLike<boolean>;
  string: ArrayLike<string>;
  array: ArrayLike<GgufArrayValue>;
};

/** `arr("string", tokens)`, `arr("f32", scores)`, `arr("i32", tokenTypes)`. */
export function arr<T extends keyof ArrayItems>(itemType: T, value: ArrayItems[T]): GgufArrayValue {
  return { type: "array", itemType, value } as GgufArrayValue;
}

// ---------------------------------------------------------------------------
// Tensor descriptions.

/** A tensor as described by a GGUF header. `shape` is in GGUF/ggml `ne` order: innermost (contiguous) dim first. */
export interface GgufTensorInfo {
  name: string;
  shape: number[];
  /** ggml_type code; may be a type this code cannot decode (see isKnownGgmlType). */
  type: number;
  /** Offset relative to the start of the tensor data section, as stored in the file. */
  relativeOffset: number;
  /** Absolute file offset of the tensor's first byte. */
  fileOffset: number;
  /** Byte size of the data, or undefined for types this code does not know. */
  byteSize: number | undefined;
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

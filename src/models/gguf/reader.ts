// Minimal GGUF reader: the header (metadata + tensor infos) and, for known types,
// a tensor's values. Reads the file in chunks, so a header with a 256k-token
// vocabulary does not need the whole multi-GB file in memory.

import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { decodeBf16, decodeF16, decodeF32, decodeQ8_0 } from "./quantize.js";
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VALUE_TYPE_CODES,
  GgmlType,
  ggmlTensorByteSize,
  isKnownGgmlType,
} from "./types.js";
import type { GgufArrayValue, GgufMetadata, GgufTensorInfo, GgufValue, GgufValueTypeName } from "./types.js";

export interface GgufHeader {
  version: number;
  metadata: GgufMetadata;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute file offset where the tensor data section starts. */
  dataOffset: number;
}

const CODE_TO_TYPE_NAME = new Map<number, GgufValueTypeName>(
  Object.entries(GGUF_VALUE_TYPE_CODES).map(([name, code]) => [code, name as GgufValueTypeName]),
);

const READ_CHUNK_BYTES = 1 << 20;

/** Sequential little-endian reader over a file handle, buffering one chunk at a time. */
class FileCursor {
  private buffer = new Uint8Array(0);
  private view = new DataView(this.buffer.buffer);
  private bufferStart = 0; // file offset of buffer[0]
  position = 0;

  constructor(private readonly handle: FileHandle) {}

  private async ensure(count: number): Promise<number> {
    const local = this.position - this.bufferStart;
    if (local + count <= this.buffer.byteLength) return local;
    const size = Math.max(READ_CHUNK_BYTES, count);
    const next = new Uint8Array(size);
    const { bytesRead } = await this.handle.read(next, 0, size, this.position);
    if (bytesRead < count) throw new Error(`unexpected end of GGUF file at offset ${this.position}`);
    this.buffer = next.subarray(0, bytesRead);
    this.view = new DataView(next.buffer, 0, bytesRead);
    this.bufferStart = this.position;
    return 0;
  }

  async u8(): Promise<number> { const at = await this.ensure(1); this.position += 1; return this.view.getUint8(at); }
  async i8(): Promise<number> { const at = await this.ensure(1); this.position += 1; return this.view.getInt8(at); }
  async u16(): Promise<number> { const at = await this.ensure(2); this.position += 2; return this.view.getUint16(at, true); }
  async i16(): Promise<number> { const at = await this.ensure(2); this.position += 2; return this.view.getInt16(at, true); }
  async u32(): Promise<number> { const at = await this.ensure(4); this.position += 4; return this.view.getUint32(at, true); }
  async i32(): Promise<number> { const at = await this.ensure(4); this.position += 4; return this.view.getInt32(at, true); }
  async f32(): Promise<number> { const at = await this.ensure(4); this.position += 4; return this.view.getFloat32(at, true); }
  async f64(): Promise<number> { const at = await this.ensure(8); this.position += 8; return this.view.getFloat64(at, true); }
  async u64(): Promise<bigint> { const at = await this.ensure(8); this.position += 8; return this.view.getBigUint64(at, true); }
  async i64(): Promise<bigint> { const at = await this.ensure(8); this.position += 8; return this.view.getBigInt64(at, true); }

  /** A u64 that must fit a JS number (counts, sizes, offsets). */
  async count(): Promise<number> {
    const value = await this.u64();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`GGUF count ${value} too large`);
    return Number(value);
  }

  async string(): Promise<string> {
    const length = await this.count();
    const at = await this.ensure(length);
    this.position += length;
    return textDecoder.decode(this.buffer.subarray(at, at + length));
  }
}

const textDecoder = new TextDecoder("utf-8");

export async function readGgufHeader(path: string): Promise<GgufHeader> {
  const handle = await open(path, "r");
  try {
    const cursor = new FileCursor(handle);
    const magic = await cursor.u32();
    if (magic !== GGUF_MAGIC) throw new Error(`${path} is not a GGUF file`);
    const version = await cursor.u32();
    if (version !== 2 && version !== 3) throw new Error(`${path}: unsupported GGUF version ${version}`);
    const tensorCount = await cursor.count();
    const kvCount = await cursor.count();

    const metadata: GgufMetadata = {};
    for (let i = 0; i < kvCount; i++) {
      const key = await cursor.string();
      const typeName = typeNameOf(await cursor.u32());
      metadata[key] = await readValue(cursor, typeName);
    }

    const alignmentValue = metadata["general.alignment"];
    const alignment = alignmentValue?.type === "u32" ? alignmentValue.value : GGUF_DEFAULT_ALIGNMENT;

    const partial: Array<Omit<GgufTensorInfo, "fileOffset">> = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = await cursor.string();
      const dims = await cursor.u32();
      const shape: number[] = [];
      for (let d = 0; d < dims; d++) shape.push(await cursor.count());
      const type = await cursor.u32();
      const relativeOffset = await cursor.count();
      const elements = shape.reduce((a, b) => a * b, 1);
      const byteSize = isKnownGgmlType(type) ? ggmlTensorByteSize(type, elements) : undefined;
      partial.push({ name, shape, type, relativeOffset, byteSize });
    }

    const dataOffset = Math.ceil(cursor.position / alignment) * alignment;
    const tensors = partial.map((info) => ({ ...info, fileOffset: dataOffset + info.relativeOffset }));
    return { version, metadata, tensors, alignment, dataOffset };
  } finally {
    await handle.close();
  }
}

function typeNameOf(code: number): GgufValueTypeName {
  const name = CODE_TO_TYPE_NAME.get(code);
  if (name === undefined) throw new Error(`unknown GGUF value type ${code}`);
  return name;
}

async function readValue(cursor: FileCursor, type: GgufValueTypeName): Promise<GgufValue> {
  switch (type) {
    case "array":
      return readArray(cursor);
    case "string":
      return { type, value: await cursor.string() };
    case "bool":
      return { type, value: (await cursor.u8()) !== 0 };
    case "u64":
      return { type, value: await cursor.u64() };
    case "i64":
      return { type, value: await cursor.i64() };
    default:
      return { type, value: await cursor[type]() };
  }
}

async function readArray(cursor: FileCursor): Promise<GgufArrayValue> {
  const itemType = typeNameOf(await cursor.u32());
  const count = await cursor.count();
  switch (itemType) {
    case "string": {
      const value: string[] = new Array<string>(count);
      for (let i = 0; i < count; i++) value[i] = await cursor.string();
      return { type: "array", itemType, value };
    }
    case "bool": {
      const value: boolean[] = new Array<boolean>(count);
      for (let i = 0; i < count; i++) value[i] = (await cursor.u8()) !== 0;
      return { type: "array", itemType, value };
    }
    case "array": {
      const value: GgufArrayValue[] = new Array<GgufArrayValue>(count);
      for (let i = 0; i < count; i++) value[i] = await readArray(cursor);
      return { type: "array", itemType, value };
    }
    case "u64":
    case "i64": {
      const value: bigint[] = new Array<bigint>(count);
      for (let i = 0; i < count; i++) value[i] = itemType === "u64" ? await cursor.u64() : await cursor.i64();
      return { type: "array", itemType, value };
    }
    default: {
      const value: number[] = new Array<number>(count);
      for (let i = 0; i < count; i++) value[i] = await cursor[itemType]();
      return { type: "array", itemType, value };
    }
  }
}

/** Reads and decodes one tensor (F32, F16, BF16 or Q8_0) to float32 values. */
export async function readGgufTensor(path: string, info: GgufTensorInfo): Promise<Float32Array> {
  if (!isKnownGgmlType(info.type) || info.byteSize === undefined) {
    throw new Error(`tensor ${info.name}: cannot decode ggml type ${info.type}`);
  }
  const handle = await open(path, "r");
  try {
    const bytes = new Uint8Array(info.byteSize);
    // read() may return less than asked for large sizes; loop until done.
    for (let done = 0; done < info.byteSize; ) {
      const { bytesRead } = await handle.read(bytes, done, info.byteSize - done, info.fileOffset + done);
      if (bytesRead <= 0) throw new Error(`tensor ${info.name}: file truncated`);
      done += bytesRead;
    }
    switch (info.type) {
      case GgmlType.F32:
        return decodeF32(bytes);
      case GgmlType.F16:
        return decodeF16(bytes);
      case GgmlType.BF16:
        return decodeBf16(bytes);
      case GgmlType.Q8_0:
        return decodeQ8_0(bytes);
    }
  } finally {
    await handle.close();
  }
}

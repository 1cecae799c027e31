// Streaming GGUF v3 writer.
//
// Layout (gguf.h): magic, version, tensor count, KV count, KV pairs, tensor infos, padding
// to the alignment, then the tensor data, each tensor starting at an aligned offset.
// The header is fully determined by names, shapes and types, so it is written first and
// each tensor's data is produced (load → encode → write) one at a time afterwards: a
// converter never holds more than one tensor of the model in memory.
//
// The file appears at its final path only once complete: we write `<path>.tmp-<pid>`,
// fsync it, then rename. Any failure removes the temporary file.

import { open, rename, rm } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { encodeBf16, encodeF16, encodeF32, encodeQ8_0 } from "./quantize.js";
import {
  GGML_TYPE_LAYOUTS,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VALUE_TYPE_CODES,
  GGUF_VERSION,
  GgmlType,
  ggmlTensorByteSize,
  u32,
} from "./types.js";
import type { GgufArrayValue, GgufMetadata, GgufValue } from "./types.js";

export interface GgufTensorSource {
  name: string;
  /** GGUF `ne` order: innermost (contiguous) dimension first, e.g. a HF Linear [out, in] is [in, out]. */
  shape: number[];
  /** Type to store; the values from load() are encoded to it. */
  type: GgmlType;
  /** Produces the tensor's values (row-major, innermost dim contiguous). Called once, just before the tensor is written. */
  load: () => Promise<Float32Array> | Float32Array;
}

export interface WriteGgufOptions {
  metadata: GgufMetadata;
  tensors: GgufTensorSource[];
  /** Data alignment in bytes (default 32). Stored as general.alignment when not the default. */
  alignment?: number;
  /** Called after each tensor is written with (tensors done, tensors total). */
  onProgress?: (done: number, total: number) => void;
}

/** Elements encoded per write call, so a huge tensor is not duplicated in memory as one encoded buffer. */
const ENCODE_CHUNK_ELEMENTS = 1 << 22;

export async function writeGguf(path: string, options: WriteGgufOptions): Promise<void> {
  const metadata = withAlignmentKey(options.metadata, options.alignment);
  const alignment = resolveAlignment(metadata);
  const plan = planTensors(options.tensors, alignment);
  const header = encodeHeader(metadata, plan, alignment);

  const tempPath = `${path}.tmp-${process.pid}`;
  let handle: FileHandle | undefined;
  try {
    handle = await open(tempPath, "w");
    await writeAll(handle, header, 0);
    const dataStart = header.byteLength;
    for (let index = 0; index < plan.length; index++) {
      const entry = plan[index];
      await writeTensorData(handle, entry, dataStart + entry.relativeOffset);
      options.onProgress?.(index + 1, plan.length);
    }
    // Pad the file to a whole alignment unit after the last tensor, as gguf.c does.
    const totalSize = dataStart + plannedDataSize(plan, alignment);
    await handle.truncate(totalSize);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tempPath, path);
  } catch (error) {
    if (handle) await handle.close().catch(() => undefined);
    await rm(tempPath, { force: true }).catch(() => undefined);
    throw error;
  }
}

interface PlannedTensor {
  source: GgufTensorSource;
  elementCount: number;
  byteSize: number;
  relativeOffset: number;
}

function planTensors(tensors: GgufTensorSource[], alignment: number): PlannedTensor[] {
  const seen = new Set<string>();
  let offset = 0;
  return tensors.map((source) => {
    if (seen.has(source.name)) throw new Error(`duplicate tensor name ${source.name}`);
    seen.add(source.name);
    if (source.shape.length < 1 || source.shape.length > 4) {
      throw new Error(`tensor ${source.name}: GGUF tensors have 1 to 4 dims, got ${source.shape.length}`);
    }
    if (!source.shape.every((dim) => Number.isSafeInteger(dim) && dim > 0)) {
      throw new Error(`tensor ${source.name}: invalid shape [${source.shape.join(", ")}]`);
    }
    const layout = GGML_TYPE_LAYOUTS[source.type];
    if (!layout) throw new Error(`tensor ${source.name}: unsupported ggml type ${String(source.type)}`);
    if (source.shape[0] % layout.blockSize !== 0) {
      throw new Error(`tensor ${source.name}: ${layout.name} needs the innermost dim to be a multiple of ${layout.blockSize}, got ${source.shape[0]}`);
    }
    const elementCount = source.shape.reduce((a, b) => a * b, 1);
    const byteSize = ggmlTensorByteSize(source.type, elementCount);
    const entry: PlannedTensor = { source, elementCount, byteSize, relativeOffset: offset };
    offset = alignUp(offset + byteSize, alignment);
    return entry;
  });
}

function plannedDataSize(plan: PlannedTensor[], alignment: number): number {
  const last = plan.at(-1);
  return last ? alignUp(last.relativeOffset + last.byteSize, alignment) : 0;
}

async function writeTensorData(handle: FileHandle, entry: PlannedTensor, position: number): Promise<void> {
  const { source } = entry;
  const values = await source.load();
  if (!(values instanceof Float32Array)) throw new Error(`tensor ${source.name}: load() must return a Float32Array`);
  if (values.length !== entry.elementCount) {
    throw new Error(`tensor ${source.name}: load() returned ${values.length} values, shape [${source.shape.join(", ")}] needs ${entry.elementCount}`);
  }
  const blockSize = GGML_TYPE_LAYOUTS[source.type].blockSize;
  const chunk = Math.max(blockSize, ENCODE_CHUNK_ELEMENTS - (ENCODE_CHUNK_ELEMENTS % blockSize));
  let written = 0;
  for (let start = 0; start < values.length; start += chunk) {
    const bytes = encodeTensorValues(source.type, values.subarray(start, Math.min(values.length, start + chunk)));
    await writeAll(handle, bytes, position + written);
    written += bytes.byteLength;
  }
  if (written !== entry.byteSize) throw new Error(`tensor ${source.name}: wrote ${written} bytes, expected ${entry.byteSize}`);
}

function encodeTensorValues(type: GgmlType, values: Float32Array): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return encodeF32(values);
    case GgmlType.F16:
      return encodeF16(values);
    case GgmlType.Q8_0:
      return encodeQ8_0(values);
    case GgmlType.BF16:
      return encodeBf16(values);
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done);
    if (bytesWritten <= 0) throw new Error("short write");
    done += bytesWritten;
  }
}

// ---------------------------------------------------------------------------
// Alignment handling: general.alignment is the single source of truth in the file.

function withAlignmentKey(metadata: GgufMetadata, alignment: number | undefined): GgufMetadata {
  const stated = metadata["general.alignment"];
  if (alignment === undefined || stated !== undefined) {
    if (stated !== undefined && alignment !== undefined && (stated.type !== "u32" || stated.value !== alignment)) {
      throw new Error(`alignment option ${alignment} conflicts with metadata general.alignment`);
    }
    return metadata;
  }
  if (alignment === GGUF_DEFAULT_ALIGNMENT) return metadata;
  return { ...metadata, "general.alignment": u32(alignment) };
}

function resolveAlignment(metadata: GgufMetadata): number {
  const stated = metadata["general.alignment"];
  if (stated === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (stated.type !== "u32") throw new Error("general.alignment must be a u32");
  const alignment = stated.value;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`general.alignment must be a power of two, got ${alignment}`);
  }
  return alignment;
}

function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}

// ---------------------------------------------------------------------------
// Header encoding.

/** Growable little-endian byte buffer for the header. */
class ByteSink {
  private buffer = new Uint8Array(1 << 16);
  private view = new DataView(this.buffer.buffer);
  length = 0;

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.byteLength) return;
    let capacity = this.buffer.byteLength * 2;
    while (capacity < this.length + extra) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void { this.reserve(1); this.view.setUint8(this.length, v); this.length += 1; }
  i8(v: number): void { this.reserve(1); this.view.setInt8(this.length, v); this.length += 1; }
  u16(v: number): void { this.reserve(2); this.view.setUint16(this.length, v, true); this.length += 2; }
  i16(v: number): void { this.reserve(2); this.view.setInt16(this.length, v, true); this.length += 2; }
  u32(v: number): void { this.reserve(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number): void { this.reserve(4); this.view.setInt32(this.length, v, true); this.length += 4; }
  f32(v: number): void { this.reserve(4); this.view.setFloat32(this.length, v, true); this.length += 4; }
  f64(v: number): void { this.reserve(8); this.view.setFloat64(this.length, v, true); this.length += 8; }
  u64(v: bigint): void { this.reserve(8); this.view.setBigUint64(this.length, v, true); this.length += 8; }
  i64(v: bigint): void { this.reserve(8); this.view.setBigInt64(this.length, v, true); this.length += 8; }
  bytes(b: Uint8Array): void { this.reserve(b.byteLength); this.buffer.set(b, this.length); this.length += b.byteLength; }
  zeros(n: number): void { this.reserve(n); this.buffer.fill(0, this.length, this.length + n); this.length += n; }

  string(s: string): void {
    const encoded = textEncoder.encode(s);
    this.u64(BigInt(encoded.byteLength));
    this.bytes(encoded);
  }

  result(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}

const textEncoder = new TextEncoder();

function encodeHeader(metadata: GgufMetadata, plan: PlannedTensor[], alignment: number): Uint8Array {
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(BigInt(plan.length));
  const entries = Object.entries(metadata);
  sink.u64(BigInt(entries.length));
  for (const [key, value] of entries) {
    sink.string(key);
    sink.u32(GGUF_VALUE_TYPE_CODES[value.type]);
    writeValueBody(sink, key, value);
  }
  for (const entry of plan) {
    sink.string(entry.source.name);
    sink.u32(entry.source.shape.length);
    for (const dim of entry.source.shape) sink.u64(BigInt(dim));
    sink.u32(entry.source.type);
    sink.u64(BigInt(entry.relativeOffset));
  }
  sink.zeros(alignUp(sink.length, alignment) - sink.length);
  return sink.result();
}

function writeValueBody(sink: ByteSink, key: string, value: GgufValue): void {
  switch (value.type) {
    case "array":
      writeArrayBody(sink, key, value);
      return;
    case "string":
      sink.string(value.value);
      return;
    case "bool":
      sink.u8(value.value ? 1 : 0);
      return;
    case "u64":
    case "i64":
      writeBigInt(sink, key, value.type, value.value);
      return;
    default:
      writeNumber(sink, key, value.type, value.value);
  }
}

function writeArrayBody(sink: ByteSink, key: string, array: GgufArrayValue): void {
  sink.u32(GGUF_VALUE_TYPE_CODES[array.itemType]);
  sink.u64(BigInt(array.value.length));
  const count = array.value.length;
  switch (array.itemType) {
    case "string":
      for (let i = 0; i < count; i++) sink.string(array.value[i]);
      return;
    case "bool":
      for (let i = 0; i < count; i++) sink.u8(array.value[i] ? 1 : 0);
      return;
    case "array":
      for (let i = 0; i < count; i++) writeArrayBody(sink, key, array.value[i]);
      return;
    case "u64":
    case "i64":
      for (let i = 0; i < count; i++) writeBigInt(sink, key, array.itemType, array.value[i]);
      return;
    default:
      for (let i = 0; i < count; i++) writeNumber(sink, key, array.itemType, array.value[i]);
  }
}

const INTEGER_RANGES = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
} as const;

function writeNumber(sink: ByteSink, key: string, type: "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64", value: number): void {
  if (type === "f32") return sink.f32(value);
  if (type === "f64") return sink.f64(value);
  const [min, max] = INTEGER_RANGES[type];
  // DataView would silently wrap; a wrapped hparam is a corrupt model, so refuse.
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`metadata ${key}: ${value} is not a valid ${type}`);
  sink[type](value);
}

function writeBigInt(sink: ByteSink, key: string, type: "u64" | "i64", value: bigint): void {
  const inRange = type === "u64" ? value >= 0n && value < 1n << 64n : value >= -(1n << 63n) && value < 1n << 63n;
  if (!inRange) throw new Error(`metadata ${key}: ${value} is not a valid ${type}`);
  sink[type](value);
}

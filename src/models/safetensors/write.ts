/**
 * A small safetensors writer (used to build test checkpoints and tooling
 * fixtures). Tensors are laid out back to back in the given order.
 */
import { writeFile } from "node:fs/promises";
import { dtypeBits } from "./dtype.js";

export interface SafetensorsWriteTensor {
  name: string;
  /** Row-major shape, outermost first. */
  shape: readonly number[];
  /** F32 and BF16 are encoded from float32 data; any dtype may be given as raw little-endian bytes. */
  dtype: string;
  data: Float32Array | Uint8Array;
}

/** Rounds float32 values to bfloat16 (round to nearest, ties to even; NaN stays NaN). Returns the 16-bit patterns. */
export function toBf16Bits(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const b = bits[i];
    if ((b & 0x7fffffff) > 0x7f800000) {
      out[i] = (b >>> 16) | 0x40; // quiet NaN
      continue;
    }
    out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** float32 values rounded through bfloat16 and back. */
export function roundToBf16(values: Float32Array): Float32Array {
  const b = toBf16Bits(values);
  const out = new Float32Array(values.length);
  const ob = new Uint32Array(out.buffer);
  for (let i = 0; i < b.length; i++) ob[i] = b[i] << 16;
  return out;
}

function encode(t: SafetensorsWriteTensor): Uint8Array {
  if (t.data instanceof Uint8Array) return t.data;
  const v = t.data;
  if (t.dtype === "F32") {
    const out = new Uint8Array(v.length * 4);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < v.length; i++) dv.setFloat32(i * 4, v[i], true);
    return out;
  }
  if (t.dtype === "BF16") {
    const b = toBf16Bits(v);
    const out = new Uint8Array(v.length * 2);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < b.length; i++) dv.setUint16(i * 2, b[i], true);
    return out;
  }
  throw new Error(`writeSafetensors: give ${t.dtype} tensor ${t.name} as raw bytes`);
}

/** Serialises tensors to the safetensors byte format. */
export function encodeSafetensors(tensors: readonly SafetensorsWriteTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const bytes = encode(t);
    const count = t.shape.reduce((a, b) => a * b, 1);
    const expected = Math.ceil((count * dtypeBits(t.dtype)) / 8);
    if (bytes.byteLength !== expected) throw new Error(`writeSafetensors: ${t.name} has ${bytes.byteLength} bytes, shape needs ${expected}`);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    blobs.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data section starts 8-byte aligned, as the reference writer does.
  const jsonBytesLen = new TextEncoder().encode(json).byteLength;
  json += " ".repeat((8 - ((8 + jsonBytesLen) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const b of blobs) {
    out.set(b, pos);
    pos += b.byteLength;
  }
  return out;
}

export async function writeSafetensors(path: string, tensors: readonly SafetensorsWriteTensor[], metadata?: Record<string, string>): Promise<void> {
  await writeFile(path, encodeSafetensors(tensors, metadata));
}

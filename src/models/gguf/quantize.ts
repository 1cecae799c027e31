// Bit-exact encoders/decoders for the tensor types we write, mirroring ggml
// (ggml-impl.h ggml_compute_fp32_to_fp16, ggml-quants.c quantize_row_q8_0_ref), so a
// file we write holds exactly the bytes llama.cpp's own quantizer would produce.

import { endianness } from "node:os";

if (endianness() !== "LE") {
  // The typed-array fast paths below write host-order words; GGUF is little-endian.
  throw new Error("GGUF encoding requires a little-endian host");
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function float32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

function float32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0];
}

/**
 * IEEE binary16 bits of `x` (first rounded to float32), round-to-nearest-even,
 * overflow to ±inf, gradual underflow to subnormals. NaN becomes 0x7E00 with x's
 * sign, as in ggml.
 */
export function f32ToF16Bits(x: number): number {
  const w = float32Bits(x);
  const sign = (w >>> 16) & 0x8000;
  const exponent = (w >>> 23) & 0xff;
  const mantissa = w & 0x7fffff;

  if (exponent === 0xff) return sign | (mantissa !== 0 ? 0x7e00 : 0x7c00);

  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;

  if (halfExponent <= 0) {
    // Result is a subnormal half (or zero): value = mantissaWithOne * 2^(exponent-150),
    // the half subnormal unit is 2^-24, so shift right by (126 - exponent) bits.
    if (halfExponent < -10) return sign; // below half of the smallest subnormal
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    let half = full >>> shift;
    const remainder = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (half & 1) === 1)) half += 1;
    return sign | half; // a carry into bit 10 correctly yields the smallest normal
  }

  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half += 1; // may carry up to inf: correct
  return sign | half;
}

export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** bfloat16 bits of `x` (rounded to float32 first), round-to-nearest-even; NaN stays a quiet NaN (as ggml). */
export function f32ToBf16Bits(x: number): number {
  const w = float32Bits(x);
  if ((w & 0x7fffffff) > 0x7f800000) return ((w >>> 16) | 0x40) & 0xffff;
  return ((w + (0x7fff + ((w >>> 16) & 1))) >>> 16) & 0xffff;
}

export function bf16BitsToF32(bits: number): number {
  return float32FromBits((bits & 0xffff) << 16);
}

// ---------------------------------------------------------------------------
// Whole-row encoders. Each returns the exact little-endian bytes of the tensor data.

export function encodeF32(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

export function encodeF16(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]);
  return new Uint8Array(out.buffer);
}

export function encodeBf16(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToBf16Bits(values[i]);
  return new Uint8Array(out.buffer);
}

export const Q8_0_BLOCK_SIZE = 32;
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK_SIZE;

/** C's roundf: half away from zero. Exact for float32 inputs of the magnitudes we see (|x| <= 127). */
function roundHalfAwayFromZero(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/**
 * q8_0 blocks, computed exactly like ggml's quantize_row_q8_0_ref in float32:
 * d = amax / 127, id = 1 / d, q = roundf(x * id); block = f16(d) followed by 32 int8.
 */
export function encodeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % Q8_0_BLOCK_SIZE !== 0) {
    throw new Error(`q8_0 needs a multiple of ${Q8_0_BLOCK_SIZE} values, got ${values.length}`);
  }
  const blockCount = values.length / Q8_0_BLOCK_SIZE;
  const out = new Uint8Array(blockCount * Q8_0_BLOCK_BYTES);
  const quants = new Int8Array(out.buffer);
  const fround = Math.fround;
  for (let block = 0; block < blockCount; block++) {
    const start = block * Q8_0_BLOCK_SIZE;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) amax = Math.max(amax, Math.abs(values[start + j]));
    const d = fround(amax / 127);
    const inverseD = d !== 0 ? fround(1 / d) : 0;
    const dBits = f32ToF16Bits(d);
    const at = block * Q8_0_BLOCK_BYTES;
    out[at] = dBits & 0xff;
    out[at + 1] = dBits >>> 8;
    for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) {
      quants[at + 2 + j] = roundHalfAwayFromZero(fround(values[start + j] * inverseD));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Decoders (for tests, reference computations and loaders).

export function decodeF32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new Error("f32 data length must be a multiple of 4");
  // Copy so the result is aligned and independent of the source buffer.
  return new Float32Array(bytes.slice().buffer);
}

function readU16Array(bytes: Uint8Array): Uint16Array {
  if (bytes.byteLength % 2 !== 0) throw new Error("16-bit data length must be even");
  return new Uint16Array(bytes.slice().buffer);
}

export function decodeF16(bytes: Uint8Array): Float32Array {
  const bits = readU16Array(bytes);
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i]);
  return out;
}

export function decodeBf16(bytes: Uint8Array): Float32Array {
  const bits = readU16Array(bytes);
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bf16BitsToF32(bits[i]);
  return out;
}

export function decodeQ8_0(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % Q8_0_BLOCK_BYTES !== 0) throw new Error(`q8_0 data length must be a multiple of ${Q8_0_BLOCK_BYTES}`);
  const blockCount = bytes.byteLength / Q8_0_BLOCK_BYTES;
  const quants = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(blockCount * Q8_0_BLOCK_SIZE);
  for (let block = 0; block < blockCount; block++) {
    const at = block * Q8_0_BLOCK_BYTES;
    const d = f16BitsToF32(bytes[at] | (bytes[at + 1] << 8));
    for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) out[block * Q8_0_BLOCK_SIZE + j] = d * quants[at + 2 + j];
  }
  return out;
}

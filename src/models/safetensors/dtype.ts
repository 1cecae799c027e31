/**
 * safetensors dtypes: byte sizes for validation, and decoders to float32 for
 * the floating-point ones the converter reads (F32, F16, BF16, F64).
 */

/** Every dtype the safetensors format defines, with its element size in bits. */
const DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  I64: 64,
  U64: 64,
  F64: 64,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
};

export type FloatDtype = "F32" | "F16" | "BF16" | "F64";

export function isKnownDtype(dtype: string): boolean {
  return Object.hasOwn(DTYPE_BITS, dtype);
}

/** Bits per element of a known dtype. */
export function dtypeBits(dtype: string): number {
  const bits = DTYPE_BITS[dtype];
  if (bits === undefined) throw new Error(`unknown safetensors dtype ${JSON.stringify(dtype)}`);
  return bits;
}

export function isFloatDtype(dtype: string): dtype is FloatDtype {
  return dtype === "F32" || dtype === "F16" || dtype === "BF16" || dtype === "F64";
}

export function floatDtypeBytes(dtype: FloatDtype): number {
  return dtypeBits(dtype) / 8;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let f16Table: Float32Array | undefined;

/** Lookup table of all 65536 half-precision values (subnormals, inf and NaN included). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    let v: number;
    if (exp === 0) v = frac * 2 ** -24;
    else if (exp === 31) v = frac === 0 ? Infinity : NaN;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    t[h] = sign * v;
  }
  f16Table = t;
  return t;
}

/**
 * Decodes `count` little-endian elements of `dtype` from `src` (starting at
 * byte 0) into `dst` starting at element `dstOffset`.
 */
export function decodeFloats(dtype: FloatDtype, src: Uint8Array, count: number, dst: Float32Array, dstOffset: number): void {
  const aligned16 = LITTLE_ENDIAN && src.byteOffset % 2 === 0;
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (dtype) {
    case "F32":
      for (let i = 0; i < count; i++) dst[dstOffset + i] = view.getFloat32(i * 4, true);
      return;
    case "F64":
      for (let i = 0; i < count; i++) dst[dstOffset + i] = view.getFloat64(i * 8, true);
      return;
    case "F16": {
      const table = halfTable();
      if (aligned16) {
        const s16 = new Uint16Array(src.buffer, src.byteOffset, count);
        for (let i = 0; i < count; i++) dst[dstOffset + i] = table[s16[i]];
      } else {
        for (let i = 0; i < count; i++) dst[dstOffset + i] = table[view.getUint16(i * 2, true)];
      }
      return;
    }
    case "BF16": {
      // bf16 is the upper half of an f32: write it into the high 16 bits of each output word.
      if (aligned16) {
        const s16 = new Uint16Array(src.buffer, src.byteOffset, count);
        const d16 = new Uint16Array(dst.buffer, dst.byteOffset + dstOffset * 4, count * 2);
        for (let i = 0; i < count; i++) {
          d16[2 * i] = 0;
          d16[2 * i + 1] = s16[i];
        }
      } else {
        const bits = new Uint32Array(dst.buffer, dst.byteOffset + dstOffset * 4, count);
        for (let i = 0; i < count; i++) bits[i] = (view.getUint16(i * 2, true) << 16) >>> 0;
      }
      return;
    }
  }
}

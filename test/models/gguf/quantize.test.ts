import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  bf16BitsToF32,
  decodeF16,
  decodeQ8_0,
  encodeF16,
  encodeQ8_0,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from "../../../src/models/gguf/quantize.js";

describe("f16", () => {
  // [input, expected IEEE binary16 bits]; expectations worked out by hand from the format.
  const cases: Array<[number, number, string]> = [
    [0, 0x0000, "zero"],
    [-0, 0x8000, "negative zero keeps its sign"],
    [1, 0x3c00, "one"],
    [-2, 0xc000, "minus two"],
    [0.5, 0x3800, "one half"],
    [0.1, 0x2e66, "0.1 rounds down (0x2E66.66..)"],
    [1 / 3, 0x3555, "one third"],
    [65504, 0x7bff, "largest finite"],
    [65519, 0x7bff, "just below the rounding boundary"],
    [65520, 0x7c00, "halfway to 65536 rounds to even = inf"],
    [Infinity, 0x7c00, "+inf"],
    [-Infinity, 0xfc00, "-inf"],
    [NaN, 0x7e00, "NaN becomes ggml's quiet NaN"],
    [1 + 2 ** -11, 0x3c00, "tie rounds to even (down)"],
    [1 + 3 * 2 ** -11, 0x3c02, "tie rounds to even (up)"],
    [2 ** -14, 0x0400, "smallest normal"],
    [2 ** -24, 0x0001, "smallest subnormal"],
    [3 * 2 ** -24, 0x0003, "subnormal"],
    [1.5 * 2 ** -24, 0x0002, "subnormal tie rounds to even (up)"],
    [2.5 * 2 ** -24, 0x0002, "subnormal tie rounds to even (down)"],
    [2 ** -25, 0x0000, "half the smallest subnormal ties to zero"],
    [Math.fround(2 ** -25 * (1 + 2 ** -23)), 0x0001, "just above half the smallest subnormal"],
    [1023.5 * 2 ** -24, 0x0400, "largest subnormal rounds up into the normals"],
    [-1e-10, 0x8000, "underflow keeps sign"],
  ];
  for (const [input, bits, why] of cases) {
    it(`${input} -> 0x${bits.toString(16).padStart(4, "0")} (${why})`, () => {
      assert.equal(f32ToF16Bits(input), bits);
    });
  }

  it("decodes known bit patterns", () => {
    assert.equal(f16BitsToF32(0x3c00), 1);
    assert.equal(f16BitsToF32(0xc000), -2);
    assert.equal(f16BitsToF32(0x7bff), 65504);
    assert.equal(f16BitsToF32(0x0001), 2 ** -24);
    assert.equal(f16BitsToF32(0x03ff), 1023 * 2 ** -24);
    assert.equal(f16BitsToF32(0x7c00), Infinity);
    assert.equal(f16BitsToF32(0xfc00), -Infinity);
    assert.ok(Number.isNaN(f16BitsToF32(0x7e00)));
    assert.ok(Object.is(f16BitsToF32(0x8000), -0));
  });

  it("round-trips every finite half exactly", () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const exponent = (bits >>> 10) & 0x1f;
      if (exponent === 0x1f) continue;
      assert.equal(f32ToF16Bits(f16BitsToF32(bits)), bits);
    }
  });

  it("encodes arrays little-endian", () => {
    const bytes = encodeF16(new Float32Array([1, -2]));
    assert.deepEqual([...bytes], [0x00, 0x3c, 0x00, 0xc0]);
    assert.deepEqual([...decodeF16(bytes)], [1, -2]);
  });
});

describe("bf16", () => {
  it("rounds to nearest even and decodes", () => {
    assert.equal(f32ToBf16Bits(1), 0x3f80);
    assert.equal(f32ToBf16Bits(-2), 0xc000);
    // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties to even (1).
    assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80);
    assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(bf16BitsToF32(0x3f80), 1);
    assert.equal(bf16BitsToF32(0x4049), 3.140625);
  });
});

describe("q8_0", () => {
  it("encodes a block worked by hand (d = 1, roundf ties away from zero)", () => {
    const values = new Float32Array(32);
    values.set([127, -63.5, 0.5, 1.5, -0.5, 2.5, -126.6]);
    const bytes = encodeQ8_0(values);
    assert.equal(bytes.byteLength, 34);
    // amax = 127 -> d = 1 (f16 0x3C00, little-endian), id = 1.
    assert.deepEqual([bytes[0], bytes[1]], [0x00, 0x3c]);
    const quants = [...new Int8Array(bytes.buffer, 2, 32)];
    assert.deepEqual(quants.slice(0, 7), [127, -64, 1, 2, -1, 3, -127]);
    assert.deepEqual(quants.slice(7), new Array(25).fill(0));
  });

  it("encodes a block with d = 0.5 and a zero block", () => {
    const values = new Float32Array(64);
    values.set([63.5, 1, 0.25, -0.75, 0.2]);
    const bytes = encodeQ8_0(values);
    assert.equal(bytes.byteLength, 68);
    assert.deepEqual([bytes[0], bytes[1]], [0x00, 0x38]); // d = 0.5
    // x * id with id = 2: 127, 2, 0.5 -> 1, -1.5 -> -2, 0.4 -> 0
    assert.deepEqual([...new Int8Array(bytes.buffer, 2, 5)], [127, 2, 1, -2, 0]);
    // second block: all zeros -> d = 0, q = 0
    assert.deepEqual([...bytes.subarray(34)], new Array(34).fill(0));
    assert.deepEqual([...decodeQ8_0(bytes).subarray(0, 5)], [63.5, 1, 0.5, -1, 0]);
  });

  it("stores d rounded to f16 but quantizes with the unrounded float32 1/d, like ggml", () => {
    const values = new Float32Array(32);
    values[0] = 1; // d = 1/127, not representable in f16
    values[1] = 0.5;
    const bytes = encodeQ8_0(values);
    const d = Math.fround(1 / 127);
    assert.equal(bytes[0] | (bytes[1] << 8), f32ToF16Bits(d));
    const quants = new Int8Array(bytes.buffer, 2, 32);
    assert.equal(quants[0], 127);
    assert.equal(quants[1], 64); // 0.5 * 127 = 63.5 -> 64
  });

  it("reconstructs random data within half a quantization step", () => {
    const values = new Float32Array(32 * 8);
    for (let i = 0; i < values.length; i++) values[i] = Math.sin(i * 12.9898) * 3;
    const decoded = decodeQ8_0(encodeQ8_0(values));
    for (let block = 0; block < 8; block++) {
      const slice = values.subarray(block * 32, block * 32 + 32);
      const amax = Math.max(...[...slice].map(Math.abs));
      const step = f16BitsToF32(f32ToF16Bits(amax / 127));
      for (let j = 0; j < 32; j++) {
        // error = half a step from rounding plus up to 127 * (f16 rounding of d)
        assert.ok(Math.abs(decoded[block * 32 + j] - slice[j]) <= step * 0.5 + Math.abs(step - amax / 127) * 127 + 1e-7);
      }
    }
  });

  it("rejects rows that are not a whole number of blocks", () => {
    assert.throws(() => encodeQ8_0(new Float32Array(31)), /multiple of 32/);
  });
});

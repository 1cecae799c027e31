import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeQ8_0, encodeQ8_0 } from "../../../src/models/gguf/quantize.js";
import { readGgufHeader, readGgufTensor } from "../../../src/models/gguf/reader.js";
import { GgmlType, arr, bool, f32, f64, i16, i32, i64, i8, str, u16, u32, u64, u8 } from "../../../src/models/gguf/types.js";
import type { GgufMetadata } from "../../../src/models/gguf/types.js";
import { writeGguf } from "../../../src/models/gguf/writer.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gguf-writer-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ramp(count: number, scale = 0.01): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = (i - count / 2) * scale;
  return values;
}

const metadata: GgufMetadata = {
  "general.architecture": str("gemma"),
  "test.u8": u8(255),
  "test.i8": i8(-128),
  "test.u16": u16(65535),
  "test.i16": i16(-32768),
  "test.u32": u32(4294967295),
  "test.i32": i32(-5),
  "test.u64": u64(2n ** 40n + 1n),
  "test.i64": i64(-(2n ** 40n)),
  "test.f32": f32(1e-6),
  "test.f64": f64(Math.PI),
  "test.bool": bool(true),
  "test.unicode": str("héllo ▁世界 🙂"),
  "test.strings": arr("string", ["<pad>", "▁", "", "日本"]),
  "test.scores": arr("f32", [0, -1.5, -2]),
  "test.types": arr("i32", [3, 6, 1]),
  "test.flags": arr("bool", [true, false]),
  "test.big": arr("u64", [1n, 2n ** 50n]),
  "test.nested": arr("array", [arr("u8", [1, 2]), arr("string", ["x"])]),
};

describe("writeGguf → readGgufHeader", () => {
  it("round-trips metadata, tensor infos and tensor data", async () => {
    const path = join(dir, "roundtrip.gguf");
    const embd = ramp(64 * 3);
    const q = ramp(32 * 4, 0.37);
    const loads: string[] = [];
    const progress: Array<[number, number]> = [];
    await writeGguf(path, {
      metadata,
      tensors: [
        { name: "a.f32", shape: [3], type: GgmlType.F32, load: () => (loads.push("a"), new Float32Array([1, 2, 3])) },
        { name: "b.f16", shape: [64, 3], type: GgmlType.F16, load: async () => (loads.push("b"), embd) },
        { name: "c.q8_0", shape: [32, 4], type: GgmlType.Q8_0, load: () => (loads.push("c"), q) },
        { name: "d.bf16", shape: [5], type: GgmlType.BF16, load: () => (loads.push("d"), new Float32Array([1, -2, 0.5, 3, 1 + 2 ** -8])) },
      ],
      onProgress: (done, total) => progress.push([done, total]),
    });
    assert.deepEqual(loads, ["a", "b", "c", "d"]);
    assert.deepEqual(progress, [[1, 4], [2, 4], [3, 4], [4, 4]]);

    const header = await readGgufHeader(path);
    assert.equal(header.version, 3);
    assert.equal(header.alignment, 32);
    assert.equal(header.dataOffset % 32, 0);
    assert.deepEqual(header.metadata, {
      ...metadata,
      "test.f32": f32(Math.fround(1e-6)),
      "test.scores": arr("f32", [0, -1.5, -2]),
    });
    assert.deepEqual(
      header.tensors.map((t) => [t.name, t.shape, t.type, t.relativeOffset, t.byteSize]),
      [
        ["a.f32", [3], GgmlType.F32, 0, 12],
        ["b.f16", [64, 3], GgmlType.F16, 32, 384],
        ["c.q8_0", [32, 4], GgmlType.Q8_0, 416, 136],
        ["d.bf16", [5], GgmlType.BF16, 576, 10],
      ],
    );
    const [a, b, c, d] = header.tensors;
    assert.deepEqual([...(await readGgufTensor(path, a))], [1, 2, 3]);
    const bValues = await readGgufTensor(path, b);
    for (let i = 0; i < embd.length; i++) assert.ok(Math.abs(bValues[i] - embd[i]) <= Math.abs(embd[i]) * 2 ** -11);
    assert.deepEqual([...(await readGgufTensor(path, c))], [...decodeQ8_0(encodeQ8_0(q))]);
    assert.deepEqual([...(await readGgufTensor(path, d))], [1, -2, 0.5, 3, 1]);

    // Data section is padded to the alignment, like gguf.c's writer.
    assert.equal((await stat(path)).size, header.dataOffset + 608);
    const raw = await readFile(path);
    assert.equal(raw.subarray(0, 4).toString("latin1"), "GGUF");
  });

  it("honours a custom alignment and records it as general.alignment", async () => {
    const path = join(dir, "aligned.gguf");
    await writeGguf(path, {
      metadata: { "general.architecture": str("x") },
      alignment: 64,
      tensors: [
        { name: "t0", shape: [3], type: GgmlType.F32, load: () => new Float32Array(3) },
        { name: "t1", shape: [2, 2], type: GgmlType.F32, load: () => new Float32Array([1, 2, 3, 4]) },
      ],
    });
    const header = await readGgufHeader(path);
    assert.deepEqual(header.metadata["general.alignment"], u32(64));
    assert.equal(header.alignment, 64);
    assert.equal(header.dataOffset % 64, 0);
    assert.deepEqual(header.tensors.map((t) => t.relativeOffset), [0, 64]);
    assert.deepEqual([...(await readGgufTensor(path, header.tensors[1]))], [1, 2, 3, 4]);
  });

  it("rejects bad inputs before writing anything", async () => {
    const path = join(dir, "bad.gguf");
    await assert.rejects(
      writeGguf(path, { metadata: {}, tensors: [{ name: "q", shape: [16, 2], type: GgmlType.Q8_0, load: () => new Float32Array(32) }] }),
      /multiple of 32/,
    );
    await assert.rejects(writeGguf(path, { metadata: { k: u8(256) }, tensors: [] }), /not a valid u8/);
    await assert.rejects(
      writeGguf(path, { metadata: {}, tensors: [{ name: "t", shape: [4], type: GgmlType.F32, load: () => new Float32Array(3) }] }),
      /returned 3 values/,
    );
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith("bad.gguf")), []);
  });
});

describe("interrupted writes", () => {
  it("leave no final file and no temporary file", async () => {
    const path = join(dir, "interrupted.gguf");
    await assert.rejects(
      writeGguf(path, {
        metadata: { "general.architecture": str("x") },
        tensors: [
          { name: "ok", shape: [4], type: GgmlType.F32, load: () => new Float32Array(4) },
          { name: "boom", shape: [4], type: GgmlType.F32, load: () => Promise.reject(new Error("disk on fire")) },
        ],
      }),
      /disk on fire/,
    );
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith("interrupted.gguf")), []);
  });

  it("keep an existing file at the destination untouched", async () => {
    const path = join(dir, "existing.gguf");
    await writeFile(path, "previous contents");
    await assert.rejects(
      writeGguf(path, {
        metadata: {},
        tensors: [{ name: "boom", shape: [4], type: GgmlType.F32, load: () => { throw new Error("nope"); } }],
      }),
      /nope/,
    );
    assert.equal(await readFile(path, "utf8"), "previous contents");
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith("existing.gguf.tmp")), []);
  });
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  SafetensorsCheckpoint,
  SafetensorsError,
  SafetensorsFile,
  encodeSafetensors,
  roundToBf16,
  writeSafetensors,
} from "../../../src/models/safetensors/index.js";

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "rerankd-st-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A file whose header is written by hand, to make it lie. */
function rawFile(header: unknown, dataBytes: number, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

async function expectError(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(SafetensorsFile.open(path), (err: unknown) => {
    assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${String(err)}`);
    assert.match(err.message, pattern);
    assert.ok(err.message.includes(path), `message should name the file: ${err.message}`);
    return true;
  });
}

test("reads f32, bf16 and f16 tensors, whole and by element range", async () => {
  await withTmp(async (dir) => {
    const a = Float32Array.from({ length: 12 }, (_, i) => (i - 5.5) / 3);
    const b = Float32Array.from([1, -2.5, 3.14159, 1e-3, 65504, -0]);
    // f16 bit patterns: 1, -2, 65504, smallest subnormal, +inf, 0.333251953125
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3555]).buffer);
    const path = join(dir, "m.safetensors");
    await writeSafetensors(
      path,
      [
        { name: "a", shape: [3, 4], dtype: "F32", data: a },
        { name: "b", shape: [6], dtype: "BF16", data: b },
        { name: "h", shape: [2, 3], dtype: "F16", data: f16 },
        { name: "ids", shape: [2], dtype: "I64", data: new Uint8Array(16) },
        { name: "empty", shape: [0, 4], dtype: "F32", data: new Float32Array(0) },
      ],
      { format: "pt" },
    );
    const f = await SafetensorsFile.open(path);
    try {
      assert.deepEqual(f.metadata, { format: "pt" });
      assert.deepEqual(f.tensor("a").shape, [3, 4]);
      assert.deepEqual(await f.readFloat32("a"), a);
      assert.deepEqual(await f.readFloat32("a", 4, 4), a.subarray(4, 8));
      assert.deepEqual(await f.readFloat32("b"), roundToBf16(b));
      assert.deepEqual([...(await f.readFloat32("h"))], [1, -2, 65504, 2 ** -24, Infinity, 0.333251953125]);
      assert.equal((await f.readFloat32("empty")).length, 0);
      await assert.rejects(f.readFloat32("ids"), /dtype I64/);
      await assert.rejects(f.readFloat32("a", 10, 4), /outside tensor "a"/);
      await assert.rejects(f.readFloat32("nope"), /not found/);
    } finally {
      await f.close();
    }
  });
});

test("bf16 rounding is round-to-nearest-even", () => {
  // 1 + 2^-8 is exactly halfway between bf16 1 and 1 + 2^-7: ties to even (1).
  // 1 + 3*2^-8 is halfway between 1+2^-7 and 1+2^-6: ties to even (1 + 2^-6).
  const r = roundToBf16(Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20]));
  assert.deepEqual([...r], [1, 1 + 2 ** -6, 1 + 2 ** -7]);
});

test("rejects headers that lie, naming file and tensor", async () => {
  await withTmp(async (dir) => {
    const p = (n: string) => join(dir, n);
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ["tiny", new Uint8Array(5), /shorter than the 8-byte header length/],
      ["hdrlen", (() => { const b = rawFile({}, 0); new DataView(b.buffer).setBigUint64(0, 1000n, true); return b; })(), /header length 1000 runs past the end/],
      ["hdrhuge", (() => { const b = rawFile({}, 0); new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true); return b; })(), /exceeds/],
      ["json", rawFile(null, 0, "{not json"), /not valid JSON/],
      ["array", rawFile([1, 2], 0), /not a JSON object/],
      ["dtype", rawFile({ w: { dtype: "F33", shape: [1], data_offsets: [0, 4] } }, 4), /tensor "w": unknown dtype "F33"/],
      ["shape", rawFile({ w: { dtype: "F32", shape: [2, -1], data_offsets: [0, 4] } }, 4), /tensor "w": shape/],
      ["span", rawFile({ w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 20] } }, 24), /tensor "w": shape \[2,3\] of F32 needs 24 bytes but data_offsets \[0, 20\] span 20/],
      ["past", rawFile({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, 12), /tensor "w": data_offsets \[0, 16\] run past the end/],
      ["reversed", rawFile({ w: { dtype: "F32", shape: [1], data_offsets: [8, 4] } }, 8), /end before they begin/],
      ["overlap", rawFile({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, v: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, 12), /tensor "v": bytes overlap tensor "w"/],
      ["meta", rawFile({ __metadata__: { a: 1 } }, 0), /__metadata__ value/],
    ];
    for (const [name, bytes, pattern] of cases) {
      await writeFile(p(name), bytes);
      await expectError(p(name), pattern);
    }
  });
});

test("a truncated file is rejected at open", async () => {
  await withTmp(async (dir) => {
    const path = join(dir, "t.safetensors");
    await writeSafetensors(path, [{ name: "w", shape: [64], dtype: "F32", data: new Float32Array(64) }]);
    await truncate(path, 100);
    await expectError(path, /tensor "w".*run past the end/);
    await writeFile(path, encodeSafetensors([{ name: "w", shape: [4], dtype: "F32", data: new Float32Array(4) }]).subarray(0, 12));
    await expectError(path, /runs past the end/);
  });
});

test("sharded checkpoints follow the index and are cross-checked", async () => {
  await withTmp(async (dir) => {
    const x = Float32Array.from([1, 2, 3, 4]);
    const y = Float32Array.from([5, 6]);
    await writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), [{ name: "x", shape: [2, 2], dtype: "F32", data: x }]);
    await writeSafetensors(join(dir, "model-00002-of-00002.safetensors"), [{ name: "y", shape: [2], dtype: "BF16", data: y }]);
    const index = { metadata: { total_size: 20 }, weight_map: { x: "model-00001-of-00002.safetensors", y: "model-00002-of-00002.safetensors" } };
    await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify(index));
    const ck = await SafetensorsCheckpoint.open(dir);
    try {
      assert.deepEqual(ck.names().sort(), ["x", "y"]);
      assert.deepEqual(await ck.readFloat32("x"), x);
      assert.deepEqual(await ck.readFloat32("y"), y);
      assert.equal(ck.info("y").dtype, "BF16");
    } finally {
      await ck.close();
    }

    // The index maps a tensor to the wrong shard.
    await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { x: "model-00002-of-00002.safetensors", y: "model-00002-of-00002.safetensors" } }));
    await assert.rejects(SafetensorsCheckpoint.open(dir), /does not contain it|maps it to/);

    // A shard is missing.
    await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { ...index.weight_map, z: "model-00003-of-00003.safetensors" } }));
    await assert.rejects(SafetensorsCheckpoint.open(dir), /shard model-00003-of-00003.safetensors listed in .* is missing/);

    // A path escaping the directory.
    await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { x: "../evil.safetensors" } }));
    await assert.rejects(SafetensorsCheckpoint.open(dir), /not a plain file name/);
  });
});

test("a directory without weights is a clear error", async () => {
  await withTmp(async (dir) => {
    await assert.rejects(SafetensorsCheckpoint.open(dir), /no safetensors weights in/);
    await writeFile(join(dir, "pytorch_model.bin"), new Uint8Array(4));
    await assert.rejects(SafetensorsCheckpoint.open(dir), /PyTorch \.bin checkpoints are not supported/);
    await assert.rejects(SafetensorsCheckpoint.open(join(dir, "missing")), /cannot read checkpoint directory/);
  });
});

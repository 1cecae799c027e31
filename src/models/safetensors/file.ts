/**
 * One `.safetensors` file: an 8-byte little-endian header length, a JSON
 * header, then the tensor bytes. The header is validated completely when the
 * file is opened; tensors are then read on demand with positional reads of
 * just their own bytes.
 */
import { open, type FileHandle } from "node:fs/promises";
import { endianness } from "node:os";
import { decodeFloats, dtypeBits, floatDtypeBytes, isFloatDtype, isKnownDtype } from "./dtype.js";

/** Safetensors caps its header at 100 MB; a larger length is a corrupt or hostile file. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Chunk size for reading and widening 16-bit tensors without a second full-size buffer. */
const READ_CHUNK_BYTES = 16 * 1024 * 1024;

export class SafetensorsError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly tensor?: string,
  ) {
    super(message);
    this.name = "SafetensorsError";
  }
}

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: string;
  /** Row-major shape as stored (PyTorch order, outermost first). */
  readonly shape: readonly number[];
  /** Path of the file holding the tensor. */
  readonly file: string;
  /** Absolute byte position of the tensor's first byte in `file`. */
  readonly start: number;
  readonly byteLength: number;
  readonly elementCount: number;
}

function fail(file: string, message: string, tensor?: string): never {
  const where = tensor === undefined ? file : `${file}: tensor ${JSON.stringify(tensor)}`;
  throw new SafetensorsError(`invalid safetensors file ${where}: ${message}`, file, tensor);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

async function readExactly(handle: FileHandle, file: string, buf: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < buf.byteLength) {
    const { bytesRead } = await handle.read(buf, done, buf.byteLength - done, position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(
        `unexpected end of file in ${file} while reading ${what} (wanted ${buf.byteLength} bytes at ${position}, got ${done}); the file is truncated or changed while open`,
        file,
      );
    }
    done += bytesRead;
  }
}

export class SafetensorsFile {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly fileSize: number,
    readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Opens and validates a file. Throws SafetensorsError naming the file (and tensor) on any inconsistency. */
  static async open(path: string): Promise<SafetensorsFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new SafetensorsError(`cannot open safetensors file ${path}: ${code ?? String(err)}`, path);
    }
    try {
      const { size } = await handle.stat();
      const { tensors, metadata } = await parseHeader(handle, path, size);
      return new SafetensorsFile(path, handle, size, tensors, metadata);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  tensor(name: string): SafetensorsTensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(`tensor ${JSON.stringify(name)} not found in ${this.path}`, this.path, name);
    return info;
  }

  /**
   * Reads `length` raw bytes of a tensor starting `offset` bytes into it.
   * Only that byte range is read from disk.
   */
  async readRaw(name: string, offset = 0, length?: number): Promise<Uint8Array> {
    const info = this.tensor(name);
    const len = length ?? info.byteLength - offset;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0 || offset + len > info.byteLength) {
      throw new SafetensorsError(`byte range [${offset}, ${offset}+${len}) is outside tensor ${JSON.stringify(name)} (${info.byteLength} bytes) in ${this.path}`, this.path, name);
    }
    this.assertOpen();
    const buf = new Uint8Array(len);
    await readExactly(this.handle, this.path, buf, info.start + offset, `tensor ${JSON.stringify(name)}`);
    return buf;
  }

  /**
   * Reads a floating-point tensor (F32, F16, BF16, F64) as float32, in
   * storage order. Optionally only `count` elements starting at element
   * `first` (e.g. a block of rows). 16-bit data is widened chunk by chunk.
   */
  async readFloat32(name: string, first = 0, count?: number): Promise<Float32Array> {
    const info = this.tensor(name);
    const n = count ?? info.elementCount - first;
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(n) || first < 0 || n < 0 || first + n > info.elementCount) {
      throw new SafetensorsError(`element range [${first}, ${first}+${n}) is outside tensor ${JSON.stringify(name)} (${info.elementCount} elements) in ${this.path}`, this.path, name);
    }
    const dtype = info.dtype;
    if (!isFloatDtype(dtype)) {
      throw new SafetensorsError(`tensor ${JSON.stringify(name)} in ${this.path} has dtype ${dtype}; only F32, F16, BF16 and F64 can be read as float32`, this.path, name);
    }
    this.assertOpen();
    const elBytes = floatDtypeBytes(dtype);
    const out = new Float32Array(n);
    const start = info.start + first * elBytes;
    if (dtype === "F32" && endianness() === "LE") {
      // Same layout as the file: read straight into the result, in bounded chunks.
      const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      for (let off = 0; off < bytes.byteLength; off += READ_CHUNK_BYTES) {
        const part = bytes.subarray(off, Math.min(bytes.byteLength, off + READ_CHUNK_BYTES));
        await readExactly(this.handle, this.path, part, start + off, `tensor ${JSON.stringify(name)}`);
      }
      return out;
    }
    const perChunk = Math.max(1, Math.floor(READ_CHUNK_BYTES / elBytes));
    const scratch = new Uint8Array(Math.min(n, perChunk) * elBytes);
    for (let done = 0; done < n; done += perChunk) {
      const k = Math.min(perChunk, n - done);
      const part = scratch.subarray(0, k * elBytes);
      await readExactly(this.handle, this.path, part, start + done * elBytes, `tensor ${JSON.stringify(name)}`);
      decodeFloats(dtype, part, k, out, done);
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new SafetensorsError(`safetensors file ${this.path} is closed`, this.path);
  }
}

async function parseHeader(
  handle: FileHandle,
  path: string,
  fileSize: number,
): Promise<{ tensors: Map<string, SafetensorsTensorInfo>; metadata: Record<string, string> }> {
  if (fileSize < 8) fail(path, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const lenBuf = new Uint8Array(8);
  await readExactly(handle, path, lenBuf, 0, "the header length");
  const headerLen = new DataView(lenBuf.buffer).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) fail(path, `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const hLen = Number(headerLen);
  if (8 + hLen > fileSize) fail(path, `header length ${hLen} runs past the end of the ${fileSize}-byte file (truncated?)`);
  const headerBytes = new Uint8Array(hLen);
  await readExactly(handle, path, headerBytes, 8, "the header");

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    fail(path, "header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    fail(path, `header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) fail(path, "header is not a JSON object");

  const dataStart = 8 + hLen;
  const dataSize = fileSize - dataStart;
  const tensors = new Map<string, SafetensorsTensorInfo>();
  const metadata: Record<string, string> = {};

  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isPlainObject(entry)) fail(path, "__metadata__ is not an object");
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== "string") fail(path, `__metadata__ value for ${JSON.stringify(k)} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (!isPlainObject(entry)) fail(path, "entry is not an object", name);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== "string") fail(path, "missing or non-string dtype", name);
    if (!isKnownDtype(dtype)) fail(path, `unknown dtype ${JSON.stringify(dtype)}`, name);
    if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isSafeInteger(d) && d >= 0)) {
      fail(path, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o): o is number => Number.isSafeInteger(o) && o >= 0)) {
      fail(path, `data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`, name);
    }
    const [begin, end] = offsets;
    if (end < begin) fail(path, `data_offsets [${begin}, ${end}] end before they begin`, name);
    let count = 1n;
    for (const d of shape) count *= BigInt(d);
    const bits = BigInt(dtypeBits(dtype));
    const expectedBytes = (count * bits + 7n) / 8n;
    if (BigInt(end - begin) !== expectedBytes) {
      fail(path, `shape ${JSON.stringify(shape)} of ${dtype} needs ${expectedBytes} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`, name);
    }
    if (end > dataSize) {
      fail(path, `data_offsets [${begin}, ${end}] run past the end of the data section (${dataSize} bytes; file truncated?)`, name);
    }
    tensors.set(name, {
      name,
      dtype,
      shape: [...shape],
      file: path,
      start: dataStart + begin,
      byteLength: end - begin,
      elementCount: Number(count),
    });
  }

  // Tensors must not share bytes. Zero-length tensors occupy nothing and cannot overlap.
  const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.start < prev.start + prev.byteLength) {
      fail(path, `bytes overlap tensor ${JSON.stringify(prev.name)} ([${prev.start - dataStart}, ${prev.start - dataStart + prev.byteLength}))`, cur.name);
    }
  }
  return { tensors, metadata };
}

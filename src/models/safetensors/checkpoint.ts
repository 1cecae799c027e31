/**
 * A Hugging Face checkpoint's weights: a single `model.safetensors`, or
 * shards listed by `model.safetensors.index.json` (`weight_map`: tensor name
 * → shard file). Every file's header is validated on open; tensors are read on
 * demand.
 */
import { readdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { SafetensorsError, SafetensorsFile, type SafetensorsTensorInfo } from "./file.js";

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";

export class SafetensorsCheckpoint {
  private constructor(
    readonly dir: string,
    /** The files in use, in name order. */
    readonly files: readonly SafetensorsFile[],
    private readonly byName: ReadonlyMap<string, SafetensorsFile>,
  ) {}

  /**
   * Opens the weights in `dir`. Uses the index when present (every shard it
   * names must exist and hold exactly the tensors mapped to it), else
   * `model.safetensors`, else every `model*.safetensors` file.
   */
  static async open(dir: string): Promise<SafetensorsCheckpoint> {
    const indexPath = join(dir, INDEX_FILE);
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (err) {
      throw new SafetensorsError(`cannot read checkpoint directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, dir);
    }
    let weightMap: Map<string, string> | undefined;
    let shardNames: string[];
    if (entries.includes(INDEX_FILE)) {
      weightMap = await readWeightMap(indexPath);
      shardNames = [...new Set(weightMap.values())].sort();
    } else if (entries.includes(SINGLE_FILE)) {
      shardNames = [SINGLE_FILE];
    } else {
      shardNames = entries.filter((e) => e.startsWith("model") && e.endsWith(".safetensors")).sort();
      if (shardNames.length === 0) {
        const bin = entries.some((e) => e.startsWith("pytorch_model") && e.endsWith(".bin"));
        throw new SafetensorsError(
          `no safetensors weights in ${dir} (expected ${SINGLE_FILE} or ${INDEX_FILE})${bin ? "; PyTorch .bin checkpoints are not supported" : ""}`,
          dir,
        );
      }
    }

    const files: SafetensorsFile[] = [];
    try {
      for (const shard of shardNames) {
        if (shard !== basename(shard) || shard === "." || shard === "..") {
          throw new SafetensorsError(`${indexPath} names shard ${JSON.stringify(shard)}, which is not a plain file name`, indexPath);
        }
        if (!entries.includes(shard)) {
          const mapped = weightMap ? [...weightMap].filter(([, f]) => f === shard).map(([n]) => n) : [];
          throw new SafetensorsError(
            `shard ${shard} listed in ${indexPath} is missing from ${dir} (it holds ${mapped.length} tensors, e.g. ${JSON.stringify(mapped[0])})`,
            join(dir, shard),
          );
        }
        files.push(await SafetensorsFile.open(join(dir, shard)));
      }
      const byName = new Map<string, SafetensorsFile>();
      for (const f of files) {
        for (const name of f.tensors.keys()) {
          const other = byName.get(name);
          if (other) throw new SafetensorsError(`tensor ${JSON.stringify(name)} appears in both ${other.path} and ${f.path}`, f.path, name);
          if (weightMap && weightMap.get(name) !== basename(f.path)) {
            throw new SafetensorsError(
              `tensor ${JSON.stringify(name)} is in ${f.path} but ${indexPath} maps it to ${JSON.stringify(weightMap.get(name) ?? null)}`,
              f.path,
              name,
            );
          }
          byName.set(name, f);
        }
      }
      if (weightMap) {
        for (const [name, shard] of weightMap) {
          if (!byName.has(name)) {
            throw new SafetensorsError(`${indexPath} maps tensor ${JSON.stringify(name)} to ${shard}, but that shard does not contain it`, join(dir, shard), name);
          }
        }
      }
      return new SafetensorsCheckpoint(dir, files, byName);
    } catch (err) {
      await Promise.all(files.map((f) => f.close()));
      throw err;
    }
  }

  /** Tensor names, in file order then header order. */
  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): SafetensorsTensorInfo {
    return this.fileOf(name).tensor(name);
  }

  readFloat32(name: string, first?: number, count?: number): Promise<Float32Array> {
    return this.fileOf(name).readFloat32(name, first, count);
  }

  readRaw(name: string, offset?: number, length?: number): Promise<Uint8Array> {
    return this.fileOf(name).readRaw(name, offset, length);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }

  private fileOf(name: string): SafetensorsFile {
    const f = this.byName.get(name);
    if (!f) throw new SafetensorsError(`tensor ${JSON.stringify(name)} not found in checkpoint ${this.dir}`, this.dir, name);
    return f;
  }
}

async function readWeightMap(indexPath: string): Promise<Map<string, string>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (err) {
    throw new SafetensorsError(`cannot read ${indexPath}: ${(err as Error).message}`, indexPath);
  }
  const wm = typeof parsed === "object" && parsed !== null ? (parsed as { weight_map?: unknown }).weight_map : undefined;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) {
    throw new SafetensorsError(`${indexPath} has no "weight_map" object`, indexPath);
  }
  const map = new Map<string, string>();
  for (const [name, file] of Object.entries(wm)) {
    if (typeof file !== "string") throw new SafetensorsError(`${indexPath}: weight_map entry for ${JSON.stringify(name)} is not a file name`, indexPath, name);
    map.set(name, file);
  }
  if (map.size === 0) throw new SafetensorsError(`${indexPath} has an empty weight_map`, indexPath);
  return map;
}

/** What the image tests share: the build script's file list, the CUDA major a binary links. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const SCRIPT = path.join(REPO, "scripts/build-image-steps.sh");

/** APP_FILES of the script: what an image contains of the checkout. */
export function appFiles(): string[] {
  const match = /^APP_FILES=\(([^)]*)\)$/m.exec(readFileSync(SCRIPT, "utf8"));
  assert.ok(match, "APP_FILES=(...) in build-image-steps.sh");
  return match[1].trim().split(/\s+/);
}

/** The CUDA major version node-llama-cpp's prebuilt CUDA backend links (libcudart.so.N), by ldd. */
export function linkedCudaMajor(moduleRoot: string): number {
  const bins = path.join(moduleRoot, "node_modules/@node-llama-cpp/linux-x64-cuda/bins");
  const lib = readdirSync(bins, { recursive: true, encoding: "utf8" }).find((f) => f.endsWith("libggml-cuda.so"));
  assert.ok(lib, `libggml-cuda.so under ${bins}`);
  const ldd = execFileSync("ldd", [path.join(bins, lib)], { encoding: "utf8" });
  const major = /libcudart\.so\.(\d+)/.exec(ldd)?.[1];
  assert.ok(major, `libcudart in:\n${ldd}`);
  return Number(major);
}

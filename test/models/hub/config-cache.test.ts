// Environment resolution, etag normalisation, repo folder names and fnmatch-style patterns, checked
// against the behaviour of Python huggingface_hub (constants.py, file_download.py, utils/_paths.py).

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";

import {
  DEFAULT_CHECKPOINT_PATTERNS,
  filterRepoFiles,
  normalizeEtag,
  repoFolderName,
  resolveHubConfig,
} from "../../../src/models/hub/index.js";

describe("resolveHubConfig", () => {
  const base = { HOME: "/home/u" };

  test("cache: HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub > $XDG_CACHE_HOME/huggingface/hub > ~/.cache", () => {
    assert.equal(resolveHubConfig(base).cacheDir, "/home/u/.cache/huggingface/hub");
    assert.equal(resolveHubConfig({ ...base, XDG_CACHE_HOME: "/x" }).cacheDir, "/x/huggingface/hub");
    assert.equal(resolveHubConfig({ ...base, XDG_CACHE_HOME: "/x", HF_HOME: "/h" }).cacheDir, "/h/hub");
    assert.equal(resolveHubConfig({ ...base, HF_HOME: "/h", HUGGINGFACE_HUB_CACHE: "/legacy" }).cacheDir, "/legacy");
    assert.equal(
      resolveHubConfig({ ...base, HF_HOME: "/h", HUGGINGFACE_HUB_CACHE: "/legacy", HF_HUB_CACHE: "/c" }).cacheDir,
      "/c",
    );
    assert.equal(resolveHubConfig({ ...base, HF_HUB_CACHE: "~/hfc" }).cacheDir, "/home/u/hfc");
  });

  test("endpoint: HF_ENDPOINT without trailing slash, default huggingface.co", () => {
    assert.equal(resolveHubConfig(base).endpoint, "https://huggingface.co");
    assert.equal(resolveHubConfig({ ...base, HF_ENDPOINT: "https://hf-mirror.example/" }).endpoint, "https://hf-mirror.example");
  });

  test("offline: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE in 1, ON, YES, TRUE (any case)", () => {
    for (const v of ["1", "on", "YES", "True"]) assert.equal(resolveHubConfig({ ...base, HF_HUB_OFFLINE: v }).offline, true);
    for (const v of ["0", "", "false", "no"]) assert.equal(resolveHubConfig({ ...base, HF_HUB_OFFLINE: v }).offline, false);
    assert.equal(resolveHubConfig({ ...base, TRANSFORMERS_OFFLINE: "1" }).offline, true);
  });

  test("token: HF_TOKEN > HUGGING_FACE_HUB_TOKEN > $HF_HOME/token (or HF_TOKEN_PATH)", async () => {
    const home = await mkdtemp(join(tmpdir(), "rerankd-hfhome-"));
    try {
      assert.equal(resolveHubConfig({ ...base, HF_HOME: home }).token, undefined);
      await writeFile(join(home, "token"), "hf_from_file\n");
      assert.equal(resolveHubConfig({ ...base, HF_HOME: home }).token, "hf_from_file");
      await writeFile(join(home, "other"), "hf_other_path");
      assert.equal(resolveHubConfig({ ...base, HF_HOME: home, HF_TOKEN_PATH: join(home, "other") }).token, "hf_other_path");
      assert.equal(resolveHubConfig({ ...base, HF_HOME: home, HUGGING_FACE_HUB_TOKEN: "hf_legacy" }).token, "hf_legacy");
      assert.equal(resolveHubConfig({ ...base, HF_HOME: home, HUGGING_FACE_HUB_TOKEN: "hf_legacy", HF_TOKEN: "hf_env" }).token, "hf_env");
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  test("overrides win", () => {
    const c = resolveHubConfig({ ...base, HF_TOKEN: "hf_env" }, { token: undefined, endpoint: "http://x/" });
    assert.equal(c.token, undefined);
    assert.equal(c.endpoint, "http://x");
  });
});

describe("cache naming (file_download.py)", () => {
  test("repo folder: models--owner--name", () => {
    assert.equal(repoFolderName("BAAI/bge-reranker-v2-gemma"), "models--BAAI--bge-reranker-v2-gemma");
  });

  test("_normalize_etag: strip W/ and quotes", () => {
    assert.equal(normalizeEtag('"abc123"'), "abc123");
    assert.equal(normalizeEtag('W/"abc123"'), "abc123");
    assert.equal(normalizeEtag("abc123"), "abc123");
    assert.equal(normalizeEtag(null), undefined);
  });
});

describe("filterRepoFiles (fnmatch, as filter_repo_objects)", () => {
  // What a conversion needs, in the order the listing has it...
  const needed = [
    "config.json",
    "model.safetensors",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "special_tokens_map.json",
    "generation_config.json",
  ];
  // ...and what it does not: other weight formats, training state, docs, a sentence-transformers folder.
  const repo = [
    ...needed,
    "pytorch_model.bin",
    "training_args.bin",
    "optimizer.pt",
    "tf_model.h5",
    "flax_model.msgpack",
    "onnx/model.onnx",
    "model-q8_0.gguf",
    "README.md",
    ".gitattributes",
    "1_Pooling/config.json",
  ];

  test("the default checkpoint patterns keep what a conversion needs and nothing heavy besides", () => {
    const kept = filterRepoFiles(repo, DEFAULT_CHECKPOINT_PATTERNS);
    assert.deepEqual(kept, needed);
    for (const f of kept) assert.doesNotMatch(f, /\.(bin|pt|h5|msgpack|onnx|gguf)$/);
  });

  test("fnmatch semantics: * crosses '/', ? and [seq] / [!seq], trailing '/' means a folder, case-sensitive", () => {
    assert.deepEqual(filterRepoFiles(["a/b.json", "b.json"], ["*.json"]), ["a/b.json", "b.json"]);
    assert.deepEqual(filterRepoFiles(["m1.bin", "m22.bin"], ["m?.bin"]), ["m1.bin"]);
    assert.deepEqual(filterRepoFiles(["m1", "m2", "m3"], ["m[12]"]), ["m1", "m2"]);
    assert.deepEqual(filterRepoFiles(["m1", "m2", "m3"], ["m[!12]"]), ["m3"]);
    assert.deepEqual(filterRepoFiles(["onnx/a", "onnx/b/c", "x/onnx"], ["onnx/"]), ["onnx/a", "onnx/b/c"]);
    assert.deepEqual(filterRepoFiles(["A.JSON", "a.json"], ["*.json"]), ["a.json"]);
    assert.deepEqual(filterRepoFiles(["a+b(1).json"], ["a+b(1).json"]), ["a+b(1).json"]);
    assert.deepEqual(filterRepoFiles(["x[y"], ["x[y"]), ["x[y"]);
  });

  test("no allow list keeps everything; the ignore list removes", () => {
    assert.deepEqual(filterRepoFiles(["a.bin", "b.json"], undefined), ["a.bin", "b.json"]);
    assert.deepEqual(filterRepoFiles(["a.bin", "b.json"], undefined, ["*.bin"]), ["b.json"]);
  });
});

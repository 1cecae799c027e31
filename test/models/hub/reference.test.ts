import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  formatModelReference,
  HubReferenceError,
  parseModelReference,
} from "../../../src/models/hub/index.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";

describe("parseModelReference", () => {
  test("owner/name defaults to main", () => {
    assert.deepEqual(parseModelReference("BAAI/bge-reranker-v2-gemma"), {
      kind: "repo",
      repo: "BAAI/bge-reranker-v2-gemma",
      revision: "main",
      explicitRevision: false,
    });
  });

  test("owner/name@revision: branch, tag, commit, refs/pr/N", () => {
    for (const rev of ["dev", "v1.0", COMMIT, "refs/pr/12"]) {
      const ref = parseModelReference(`Qwen/Qwen3-Reranker-0.6B@${rev}`);
      assert.equal(ref.kind, "repo");
      assert.equal(ref.revision, rev);
      assert.equal(ref.explicitRevision, true);
    }
  });

  test("hf:owner/name/path/file.gguf[@revision] names one file", () => {
    assert.deepEqual(parseModelReference("hf:acme/rr-GGUF/q8/model-Q8_0.gguf"), {
      kind: "file",
      repo: "acme/rr-GGUF",
      path: "q8/model-Q8_0.gguf",
      revision: "main",
      explicitRevision: false,
    });
    const pinned = parseModelReference(`hf:acme/rr-GGUF/model.gguf@${COMMIT}`);
    assert.equal(pinned.kind, "file");
    assert.equal(pinned.revision, COMMIT);
    assert.equal(pinned.kind === "file" && pinned.path, "model.gguf");
  });

  test("hf:owner/name is a repository reference", () => {
    assert.deepEqual(parseModelReference("hf:BAAI/bge-reranker-v2-m3@main"), {
      kind: "repo",
      repo: "BAAI/bge-reranker-v2-m3",
      revision: "main",
      explicitRevision: true,
    });
  });

  test("round-trips through formatModelReference", () => {
    for (const s of ["BAAI/bge-reranker-v2-gemma", "a/b@v2", "hf:a/b/c/d.gguf", `hf:a/b/d.gguf@${COMMIT}`]) {
      assert.equal(formatModelReference(parseModelReference(s)), s);
    }
  });

  const bad: Array<[string, RegExp]> = [
    ["", /empty/],
    ["   ", /empty/],
    ["bge-reranker", /owner\/name/],
    ["BAAI/", /owner\/name/],
    ["/abs/path/model", /local path/],
    ["./model.gguf", /local path/],
    ["~/models/x", /local path/],
    ["https://huggingface.co/BAAI/bge-reranker-v2-gemma", /URLs are not accepted/],
    ["BAAI/bge-reranker-v2-gemma/model.gguf", /hf:owner\/name\/path/],
    ["BAAI/bge@", /revision after '@' is empty/],
    ["BAAI/bge@a b", /character git does not allow/],
    ["BAAI/bge@../../etc", /not a valid git ref/],
    ["BA AI/bge", /may only contain/],
    ["BAAI/-bge", /cannot start or end/],
    ["BAAI/bge--x", /'--'/],
    ["hf:acme", /hf:owner\/name\/path/],
    ["hf:acme/rr/../secret", /'\.\.' segment/],
    ["hf:acme/rr/dir//f.gguf", /empty/],
    [`hf:acme/rr/f.gguf@`, /empty/],
    [`a/${"x".repeat(100)}`, /longer than 96/],
  ];
  for (const [input, message] of bad) {
    test(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseModelReference(input),
        (error: unknown) => {
          assert.ok(error instanceof HubReferenceError);
          assert.equal(error.kind, "invalid-reference");
          assert.match(error.message, /^Invalid model reference /);
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }
});

/** The hardening flags of `rerankd serve`: defaults, parsing, refusals, and --help. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { UsageError, parseServeArgs, serveHelp, type ServeOptions } from "../../src/cli/serve-options.js";
import { FaultSpecError, parseFaultSpec } from "../../src/server/fault-injection.js";

const parse = (args: string[]) => parseServeArgs(["m.gguf", ...args], {}) as ServeOptions;

test("defaults: limits, deadline, queue bound, shutdown, logging, CORS and rate limit", () => {
  const o = parse([]);
  assert.deepEqual(
    {
      maxDocuments: o.maxDocuments,
      maxPairs: o.maxPairs,
      maxChars: o.maxChars,
      requestTimeoutMs: o.requestTimeoutMs,
      maxQueuedTokens: o.maxQueuedTokens,
      shutdownTimeoutMs: o.shutdownTimeoutMs,
      logRequests: o.logRequests,
      allowedOrigins: o.allowedOrigins,
      rateLimit: o.rateLimit,
      maxBodyBytes: o.maxBodyBytes,
    },
    {
      maxDocuments: 1000,
      maxPairs: 1000,
      maxChars: 100_000,
      requestTimeoutMs: 120_000,
      maxQueuedTokens: 131_072,
      shutdownTimeoutMs: 30_000,
      logRequests: false,
      allowedOrigins: [],
      rateLimit: 0,
      maxBodyBytes: 16 * 1024 * 1024,
    },
  );
});

test("values: decimal seconds, origins comma-separated or repeated, burst defaults to twice the rate", () => {
  const o = parse([
    "--request-timeout", "0.25", "--shutdown-timeout", "0", "--max-queued-tokens", "5000", "--max-documents", "10",
    "--allowed-origins", "https://a.example,https://B.example/", "--allowed-origins", "http://localhost:3000",
    "--rate-limit", "5", "--log-requests",
  ]);
  assert.equal(o.requestTimeoutMs, 250);
  assert.equal(o.shutdownTimeoutMs, 0);
  assert.equal(o.maxQueuedTokens, 5000);
  assert.equal(o.maxDocuments, 10);
  assert.deepEqual(o.allowedOrigins, ["https://a.example", "https://b.example", "http://localhost:3000"]);
  assert.equal(o.rateLimit, 5);
  assert.equal(o.rateLimitBurst, 10);
  assert.equal(o.logRequests, true);
  assert.deepEqual(parse(["--allowed-origins", "*"]).allowedOrigins, ["*"]);
});

test("bad values are usage errors naming the flag", () => {
  for (const [args, flag] of [
    [["--request-timeout", "-1"], /--request-timeout/],
    [["--request-timeout", "soon"], /--request-timeout/],
    [["--max-queued-tokens", "0"], /--max-queued-tokens/],
    [["--max-documents", "1.5"], /--max-documents/],
    [["--allowed-origins", "evil.example/path"], /--allowed-origins/],
    [["--rate-limit", "x"], /--rate-limit/],
  ] as Array<[string[], RegExp]>) {
    assert.throws(() => parse(args), (e: unknown) => e instanceof UsageError && flag.test(e.message), args.join(" "));
  }
});

test("--help lists every hardening flag and not the fault-injection testing aid", () => {
  const help = serveHelp();
  for (const flag of ["--max-documents", "--max-pairs", "--max-chars", "--request-timeout", "--max-queued-tokens", "--shutdown-timeout", "--rate-limit", "--allowed-origins", "--log-requests"]) {
    assert.ok(help.includes(flag), flag);
  }
  assert.doesNotMatch(help, /RERANKD_FAULT_INJECT|fault.inject/i);
});

test("RERANKD_FAULT_INJECT accepts only evaluate:every=N", () => {
  assert.equal(parseFaultSpec(undefined), null);
  assert.equal(parseFaultSpec(""), null);
  assert.deepEqual(parseFaultSpec("evaluate:every=7"), { kind: "evaluate", every: 7 });
  for (const bad of ["evaluate:every=0", "evaluate", "load:every=1", "evaluate:every=-1"]) assert.throws(() => parseFaultSpec(bad), FaultSpecError);
});

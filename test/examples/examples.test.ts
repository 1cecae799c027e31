/**
 * Every snippet in examples/ run as a user would, unmodified, against the real CLI serving the tiny
 * Gemma fixture with an API key, given only RERANKD_URL / RERANKD_API_KEY / RERANKD_MODEL. What
 * each prints is checked against the server's own ranking of the same request. The Python one
 * runs where python3 can import requests, and says why it is skipped elsewhere.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { buildTinyGemma } from "../support/tiny-gemma.js";
import { rerankScores, startCliServer, type CliServer } from "../support/cli-server.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const examples = path.join(repo, "examples");
const preload = fileURLToPath(new URL("./loopback-preload.ts", import.meta.url));
const MODEL = "BAAI/bge-reranker-v2-gemma";
const KEY = "examples-test-key";

// The request every example makes.
const query = "What is the capital of China?";
const documents = [
  "The capital of China is Beijing.",
  "Gravity is a force that attracts two bodies toward each other.",
  "Paris is the capital of France.",
];

let server: CliServer;
let reference: Map<number, number>;

before(async () => {
  const model = await buildTinyGemma();
  server = await startCliServer([model.path, "--served-model-name", MODEL, "--api-key", KEY]);
  reference = await rerankScores(server.url, { model: MODEL, query, documents }, { authorization: `Bearer ${KEY}` });
});
after(async () => {
  await server?.stop();
});

function exampleEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, RERANKD_URL: server.url, RERANKD_API_KEY: KEY, RERANKD_MODEL: MODEL };
  for (const name of ["CO_API_KEY", "COHERE_API_KEY", "LANGCHAIN_API_KEY", "LANGSMITH_API_KEY"]) delete env[name];
  return { ...env, LANGCHAIN_TRACING_V2: "false", LANGSMITH_TRACING: "false" };
}

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { cwd: repo, env: exampleEnv(), encoding: "utf8", timeout: 120_000 });
  assert.equal(result.status, 0, `${command} ${args.join(" ")} exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** The examples' printed line: "<score>  #<index>  <document>", best first. */
function parseLines(output: string): Array<{ index: number; score: number; text: string }> {
  const lines = output.trim().split("\n");
  return lines.map((line) => {
    const match = /^(-?\d+\.\d{6}) {2}#(\d+) {2}(.*)$/.exec(line);
    assert.ok(match, `unexpected line: ${JSON.stringify(line)}`);
    return { score: Number(match[1]), index: Number(match[2]), text: match[3] };
  });
}

/** Best first, each score the server's within llama.cpp's batch-to-batch wobble and the printing's 1e-6. */
function assertRanking(results: Array<{ index: number; score: number; text?: string }>, expected: Map<number, number>): void {
  const tolerance = 2e-3;
  assert.equal(results.length, documents.length);
  assert.deepEqual(
    results.map((r) => r.index).sort(),
    documents.map((_d, i) => i),
  );
  results.forEach((r, i) => {
    if (i > 0) assert.ok(results[i - 1].score >= r.score, "best first");
    const want = expected.get(r.index) as number;
    assert.ok(Math.abs(r.score - want) <= tolerance, `#${r.index}: ${r.score} vs ${want}`);
    if (r.text !== undefined) assert.equal(r.text, documents[r.index]);
  });
}

for (const file of ["fetch.ts", "cohere.ts", "langchain.ts"]) {
  test(`examples/${file} (TypeScript) prints the server's ranking`, () => {
    const output = run(process.execPath, ["--import", "tsx", "--import", preload, path.join(examples, file)]);
    assertRanking(parseLines(output), reference);
  });
}

test("examples/curl.sh prints the vLLM-shaped answer", () => {
  const answer = JSON.parse(run("bash", [path.join(examples, "curl.sh")])) as {
    model: string;
    results: Array<{ index: number; relevance_score: number; document: { text: string } }>;
  };
  assert.equal(answer.model, MODEL);
  assertRanking(
    answer.results.map((r) => ({ index: r.index, score: r.relevance_score, text: r.document.text })),
    reference,
  );
});

test("examples/tei-curl.sh prints TEI's bare array", () => {
  const answer = JSON.parse(run("bash", [path.join(examples, "tei-curl.sh")])) as Array<{ index: number; score: number; text: string }>;
  assert.ok(Array.isArray(answer));
  assertRanking(answer, reference);
});

test("examples/curl.sh fails loudly on a wrong key (curl --fail-with-body)", () => {
  const result = spawnSync("bash", [path.join(examples, "curl.sh")], { cwd: repo, env: { ...exampleEnv(), RERANKD_API_KEY: "wrong" }, encoding: "utf8" });
  assert.notEqual(result.status, 0);
  assert.match(result.stdout, /AuthenticationError/);
});

const pythonMissing = ((): string | false => {
  const probe = spawnSync("python3", ["-c", "import requests"], { encoding: "utf8" });
  if (probe.error) return "python3 is not installed";
  if (probe.status !== 0) return "python3 cannot import requests (apt-get install -y python3-requests, or pip install requests)";
  return false;
})();

test("examples/python_requests.py prints the server's ranking", { skip: pythonMissing }, () => {
  // requests honours HTTP(S)_PROXY: NO_PROXY keeps the loopback request local whatever the environment says.
  const output = execFileSync("python3", [path.join(examples, "python_requests.py")], {
    cwd: repo,
    env: { ...exampleEnv(), NO_PROXY: "127.0.0.1", no_proxy: "127.0.0.1" },
    encoding: "utf8",
  });
  assertRanking(parseLines(output), reference);
});

/**
 * The pages the server shows a person, in a real browser (Debian's chromium driven by
 * playwright-core) against the real CLI serving the tiny Gemma fixture with an API key:
 * the playground at / (type a query, rank, read the list, toggle activation and top_n, copy the
 * curl command and run it) and the /docs page (Swagger UI over /openapi.json with the seed's
 * requests as examples). Every ranking the page shows is checked against the API's own answer.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { buildTinyGemma } from "../support/tiny-gemma.js";
import { startCliServer, postJson, type CliServer } from "../support/cli-server.js";
import { browserUnavailable, launchBrowser, type Browser } from "./browser.js";

const MODEL = "BAAI/bge-reranker-v2-gemma";
const KEY = "playground-test-key";
const SEED = fileURLToPath(new URL("../../../shared/seed/bge-reranker-v2-gemma-api.txt", import.meta.url));

// Without chromium the browser tests cannot run: a skip with the reason locally, a failure in CI
// (whose .ci/run installs it).
const missing = browserUnavailable();
const skip = missing !== null && process.env.CI !== "true" ? missing : false;
if (missing !== null && process.env.CI === "true") throw new Error(missing);

let server: CliServer;
let browser: Browser;
let page: Page;

before(async () => {
  const model = await buildTinyGemma();
  server = await startCliServer([model.path, "--served-model-name", MODEL, "--api-key", KEY]);
  if (skip) return;
  browser = await launchBrowser();
  await browser.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  page = await browser.context.newPage();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * The browser globals the page callbacks below use: this project compiles without the DOM library
 * (adding it would change every file's globals), so they are declared here, for this module only.
 */
interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  style: { width: string };
  querySelector(selector: string): PageElement | null;
  removeAttribute(name: string): void;
}
declare const document: {
  getElementById(id: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { length: number };
};
declare const navigator: { clipboard: { readText(): Promise<string> } };
declare const sessionStorage: { getItem(key: string): string | null };
declare const localStorage: { length: number };

interface ApiResult {
  index: number;
  relevance_score: number;
  document?: { text: string };
}

async function apiRerank(body: Record<string, unknown>): Promise<ApiResult[]> {
  const { status, json } = await postJson(`${server.url}/v1/rerank`, body, { authorization: `Bearer ${KEY}` });
  assert.equal(status, 200, JSON.stringify(json));
  return (json as { results: ApiResult[] }).results;
}

interface ShownResult {
  index: number;
  score: string;
  exact: number;
  text: string;
  barPercent: number;
}

/** The ranked list as the page shows it. */
async function shownResults(): Promise<ShownResult[]> {
  return page.$$eval("#results li", (items) =>
    (items as unknown as PageElement[]).map((li) => {
      const fill = li.querySelector(".fill");
      return {
        index: Number(li.dataset.index),
        score: li.querySelector(".score")?.textContent ?? "",
        exact: Number(li.dataset.score),
        text: li.querySelector(".text")?.textContent ?? "",
        barPercent: parseFloat(fill?.style.width ?? "NaN"),
      };
    }),
  );
}

/**
 * The page's list against the API's full ranking of the same documents. llama.cpp's results move
 * in the last digits with how pairs are batched, so two calls can differ by ~1e-4: scores are
 * compared with a tolerance, and the order as "sorted by the page's scores, and nothing left out
 * that scored clearly higher".
 */
function assertSameRanking(shown: ShownResult[], all: ApiResult[], documents: string[], activated: boolean, topN = 0): void {
  const tolerance = 2e-3;
  const apiScore = new Map(all.map((r) => [r.index, r.relevance_score]));
  assert.equal(shown.length, topN > 0 ? Math.min(topN, documents.length) : documents.length);
  shown.forEach((r, i) => {
    assert.equal(r.text, documents[r.index]);
    if (i > 0) assert.ok(shown[i - 1].exact >= r.exact, "the page lists the best first");
    assert.equal(r.score, r.exact.toFixed(4), "the shown score is the response's");
    const expected = apiScore.get(r.index) as number;
    assert.ok(Math.abs(r.exact - expected) <= tolerance * Math.max(1, Math.abs(expected)), `document ${r.index}: ${r.exact} vs ${expected}`);
    const fraction = activated ? r.exact : 1 / (1 + Math.exp(-r.exact));
    assert.ok(Math.abs(r.barPercent - fraction * 100) < 0.01, `bar ${r.barPercent}% for score ${r.exact}`);
  });
  const lowestShown = Math.min(...shown.map((r) => r.exact));
  for (const r of all) {
    if (!shown.some((s) => s.index === r.index)) assert.ok(r.relevance_score <= lowestShown + tolerance, `document ${r.index} was left out`);
  }
}

test("/ and its assets are public static files with a strict CSP; the API stays behind the key", async () => {
  for (const [path, type] of [
    ["/", "text/html"],
    ["/playground/playground.js", "text/javascript"],
    ["/playground/playground.css", "text/css"],
  ]) {
    const response = await fetch(`${server.url}${path}`);
    assert.equal(response.status, 200, path);
    assert.match(response.headers.get("content-type") ?? "", new RegExp(`^${type}`), path);
    assert.match(response.headers.get("content-security-policy") ?? "", /default-src 'none'.*connect-src 'self'/, path);
    await response.arrayBuffer();
  }
  const page = await (await fetch(`${server.url}/`)).text();
  assert.doesNotMatch(page, /BAAI|Beijing is|relevance_score/, "the page itself carries no model data");
  const denied = await postJson(`${server.url}/v1/rerank`, { query: "q", documents: ["d"] });
  assert.equal(denied.status, 401);
  const hidden = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
  assert.equal(hidden.paths["/"], undefined, "the page is not an API operation");
});

test("the playground asks for the key, then ranks what the user typed as the API does", { skip }, async () => {
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => document.getElementById("model-line")?.textContent?.includes("API key"));
  await page.click("#rank");
  await page.waitForSelector("#error:not([hidden])");
  assert.match((await page.textContent("#error")) ?? "", /API key/);

  await page.fill("#api-key", KEY);
  await page.locator("#api-key").blur();
  await page.waitForFunction((model) => document.getElementById("model-line")?.textContent?.includes(model), MODEL);

  const query = "Explain gravity";
  const documents = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies toward each other. It gives weight to physical objects and is responsible for the movement of planets around the sun.",
    "A neural network is a machine learning model inspired by biological neurons.",
    "Photosynthesis is the process by which plants convert light energy into chemical energy.",
  ];
  await page.fill("#query", "");
  await page.locator("#query").pressSequentially(query);
  await page.fill("#documents", `${documents.join("\n")}\n\n`);
  await page.click("#rank");
  await page.waitForSelector("#results li");

  assertSameRanking(await shownResults(), await apiRerank({ model: MODEL, query, documents }), documents, true);
  assert.equal(await page.isHidden("#error"), true);
  assert.match((await page.textContent("#usage")) ?? "", new RegExp(`4 of 4 documents .* tokens .* ${MODEL.replace(/[.]/g, "\\.")}`));
});

test("the playground's use_activation and top_n toggles send what they say", { skip }, async () => {
  await page.uncheck("#use-activation");
  await page.fill("#top-n", "2");
  await page.click("#rank");
  await page.waitForFunction(() => document.querySelectorAll("#results li").length === 2);
  const query = await page.inputValue("#query");
  const documents = (await page.inputValue("#documents")).split("\n").filter((d) => d.trim() !== "");
  const all = await apiRerank({ model: MODEL, query, documents, use_activation: false });
  assertSameRanking(await shownResults(), all, documents, false, 2);
  assert.match((await page.textContent("#usage")) ?? "", /2 of 4 documents · scores: raw logits/);
});

test("'Copy as curl' copies a command that, run by bash, answers with the ranking shown", { skip }, async () => {
  await page.click("#copy-curl");
  await page.waitForFunction(() => document.getElementById("status")?.textContent?.startsWith("Copied"));
  const copied: string = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, await page.textContent("#curl"));
  assert.ok(!copied.includes(KEY), "the key is never written into the command");
  assert.match(copied, /\$RERANKD_API_KEY/);

  const out = execFileSync("bash", ["-c", `${copied} -s`], { env: { ...process.env, RERANKD_API_KEY: KEY }, encoding: "utf8" });
  const answer = JSON.parse(out) as { results: ApiResult[] };
  const query = await page.inputValue("#query");
  const documents = (await page.inputValue("#documents")).split("\n").filter((d) => d.trim() !== "");
  assert.equal(answer.results.length, 2, "the command carries top_n");
  assert.ok(answer.results.some((r) => r.relevance_score < 0 || r.relevance_score > 1), "and use_activation: false (raw logits)");
  const all = await apiRerank({ model: MODEL, query, documents, use_activation: false });
  assertSameRanking(await shownResults(), all, documents, false, 2);
  assert.deepEqual(
    answer.results.map((r) => r.document?.text),
    answer.results.map((r) => documents[r.index]),
  );
});

test("the key lives in sessionStorage only and survives a reload of the tab", { skip }, async () => {
  assert.equal(await page.evaluate(() => sessionStorage.getItem("rerankd.apiKey")), KEY);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  await page.reload();
  assert.equal(await page.inputValue("#api-key"), KEY);
  await page.waitForFunction((model) => document.getElementById("model-line")?.textContent?.includes(model), MODEL);
});

test("a server error is shown on the page, not a stale list", { skip }, async () => {
  await page.fill("#top-n", "-1");
  // The number input's own validation would stop the form: submit the request as typed regardless.
  await page.evaluate(() => document.getElementById("top-n")?.removeAttribute("min"));
  await page.click("#rank");
  await page.waitForSelector("#error:not([hidden])");
  assert.match((await page.textContent("#error")) ?? "", /top_n/);
  assert.equal((await shownResults()).length, 0);
});

/** The seed's request bodies, with the model variable substituted as the shell would. */
function seedBodies(): Array<{ route: "rerank" | "score"; body: Record<string, unknown> }> {
  const lines = readFileSync(SEED, "utf8").split("\n");
  const bodies: Array<{ route: "rerank" | "score"; body: Record<string, unknown> }> = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith("curl -X POST")) continue;
    const route = lines[i].includes("/score") ? "score" : "rerank";
    const start = lines.indexOf(lines.slice(i).find((l) => l.startsWith("-d '")) as string, i);
    let end = start;
    while (!lines[end].startsWith("}'")) end++;
    const text = [lines[start].slice(4), ...lines.slice(start + 1, end), "}"].join("\n");
    bodies.push({ route, body: JSON.parse(text.replace(`"'"$BGE_RERANK_MODEL"'"`, JSON.stringify(MODEL))) as Record<string, unknown> });
    i = end;
  }
  return bodies;
}

interface OpenApiDoc {
  paths: Record<string, { post?: { requestBody?: { content: Record<string, { examples?: Record<string, { summary?: string; value: unknown }> }> } } }>;
}

test("/openapi.json carries every seed request as a named request example", async () => {
  const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as OpenApiDoc;
  const examplesOf = (path: string) => Object.values(doc.paths[path].post?.requestBody?.content["application/json"].examples ?? {});
  const seed = seedBodies();
  assert.equal(seed.length, 10);
  for (const { route, body } of seed) {
    for (const path of route === "rerank" ? ["/v1/rerank", "/rerank", "/v2/rerank"] : ["/v1/score", "/score"]) {
      const found = examplesOf(path).find((e) => JSON.stringify(e.value) === JSON.stringify(body));
      assert.ok(found, `${path} lacks the seed request ${JSON.stringify(body).slice(0, 80)}`);
      assert.ok(found.summary, "each example is named");
    }
  }
  // Every example is a request the server accepts.
  for (const path of ["/v1/rerank", "/v1/score"]) {
    for (const example of examplesOf(path)) {
      const { status, json } = await postJson(`${server.url}${path}`, example.value, { authorization: `Bearer ${KEY}` });
      assert.equal(status, 200, `${example.summary}: ${JSON.stringify(json)}`);
    }
  }
});

test("/docs renders the OpenAPI document in Swagger UI with the seed's examples to pick from", { skip }, async () => {
  const docs = await browser.context.newPage();
  await docs.goto(`${server.url}/docs`);
  const operation = docs.locator("#operations-scoring-post_v1_rerank");
  await operation.locator(".opblock-summary").click();
  const select = operation.locator(".opblock-section-request-body select.examples-select-element");
  await select.waitFor();
  const options = await select.locator("option").allTextContents();
  for (const name of ["Rerank documents", "Top-N reranking", "Raw score mode", "Rerank with document objects", "text-embeddings-inference client (answer: a bare array)"]) {
    assert.ok(options.some((o) => o.includes(name)), `${name} in ${JSON.stringify(options)}`);
  }
  assert.match((await operation.locator(".opblock-section-request-body").textContent()) ?? "", /What is the capital of China\?/);
  await select.selectOption({ label: options.find((o) => o.includes("Raw score mode")) as string });
  await docs.waitForFunction(() =>
    document.querySelector("#operations-scoring-post_v1_rerank .opblock-section-request-body")?.textContent?.includes("use_activation"),
  );
  assert.match((await operation.locator(".opblock-section-request-body").textContent()) ?? "", /What is semantic search\?/);
  await docs.close();
});

test("neither page reached any host but the server on 127.0.0.1", { skip }, () => {
  assert.deepEqual(browser.offLoopback, []);
});

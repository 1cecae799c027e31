/* global document, sessionStorage, navigator, location, window */
// The playground page: sends the form as a vLLM rerank request to this server's /v1/rerank, shows
// the ranked documents with score bars, and the same request as a curl command. No framework and no
// build step; every text from the user or the server goes into the page as text, never as HTML.

const KEY_STORAGE = "rerankd.apiKey";
const ENDPOINT = "/v1/rerank";

const $ = (id) => document.getElementById(id);

/** The served model's name, once /v1/models told us (sent as `model`, shown in the curl command). */
let servedModel = null;

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

/** One document per non-blank line, trimmed (a pasted Windows text keeps no "\r"). */
function documentsFromText(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

/** The request the form describes, exactly as it is sent. */
function requestBody() {
  const body = {};
  if (servedModel) body.model = servedModel;
  body.query = $("query").value;
  body.documents = documentsFromText($("documents").value);
  const topN = $("top-n").value.trim();
  if (topN !== "" && Number(topN) !== 0) body.top_n = Number(topN);
  body.use_activation = $("use-activation").checked;
  return body;
}

function apiKey() {
  return $("api-key").value.trim();
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** A POSIX shell single-quoted word. */
function shellQuote(text) {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The request as a curl command; the key is read from $RERANKD_API_KEY, never written out. */
function curlCommand(body) {
  const lines = [`curl -X POST ${shellQuote(location.origin + ENDPOINT)}`, `  -H 'Content-Type: application/json'`];
  if (apiKey()) lines.push(`  -H "Authorization: Bearer $RERANKD_API_KEY"`);
  lines.push(`  -d ${shellQuote(JSON.stringify(body, null, 2))}`);
  return lines.join(" \\\n");
}

function showCurl() {
  $("curl").textContent = curlCommand(requestBody());
}

function setStatus(text) {
  $("status").textContent = text;
}

function showError(message) {
  const error = $("error");
  error.textContent = message;
  error.hidden = false;
}

function clearResults() {
  $("error").hidden = true;
  $("error").textContent = "";
  $("results").replaceChildren();
  $("usage").textContent = "";
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderResults(response, documents, activated, elapsedMs) {
  const list = $("results");
  for (const result of response.results) {
    const item = element("li", "result");
    item.dataset.index = String(result.index);
    item.dataset.score = String(result.relevance_score);

    const row = element("div", "row");
    const score = element("span", "score", result.relevance_score.toFixed(4));
    score.title = String(result.relevance_score);
    const bar = element("span", "bar");
    const fill = element("span", "fill");
    const fraction = activated ? result.relevance_score : sigmoid(result.relevance_score);
    fill.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
    bar.append(fill);
    bar.title = activated ? "relevance score" : "sigmoid of the raw logit";
    row.append(score, bar, element("span", "index", `index ${result.index}`));

    const text = result.document ? result.document.text : documents[result.index];
    item.append(row, element("p", "text", text));
    list.append(item);
  }
  const tokens = response.usage ? `${response.usage.total_tokens} tokens · ` : "";
  const kind = activated ? "scores: sigmoid, in [0, 1]" : "scores: raw logits (bars show their sigmoid)";
  $("usage").textContent = `${response.results.length} of ${documents.length} documents · ${kind} · ${tokens}${Math.round(elapsedMs)} ms · ${response.model}`;
}

async function rank(event) {
  event.preventDefault();
  clearResults();
  const body = requestBody();
  if (body.documents.length === 0) {
    showError("Add at least one document, one per line.");
    return;
  }
  const button = $("rank");
  button.disabled = true;
  setStatus("Ranking…");
  const started = performance.now();
  try {
    const response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify(body),
    });
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      const message = payload && payload.error && payload.error.message ? payload.error.message : `HTTP ${response.status}`;
      showError(response.status === 401 ? `${message} Enter the server's API key above.` : message);
      setStatus("");
      return;
    }
    renderResults(payload, body.documents, body.use_activation, performance.now() - started);
    setStatus("");
  } catch (error) {
    showError(`The server could not be reached: ${error instanceof Error ? error.message : String(error)}`);
    setStatus("");
  } finally {
    button.disabled = false;
  }
}

/** Shows which model answers; the page works without it (the server then uses its only model). */
async function loadModel() {
  try {
    const response = await fetch("/v1/models", { headers: authHeaders() });
    if (response.status === 401) {
      servedModel = null;
      $("model-line").textContent = "This server requires an API key: enter it below.";
      return;
    }
    const payload = await response.json();
    const model = payload.data && payload.data[0];
    servedModel = model ? model.id : null;
    $("model-line").textContent = model ? `Model: ${model.id} (max length ${model.max_model_len} tokens)` : "The model is still loading.";
  } catch {
    $("model-line").textContent = "The server could not be reached.";
  } finally {
    showCurl();
  }
}

async function copyCurl() {
  const text = curlCommand(requestBody());
  $("curl").textContent = text;
  try {
    await navigator.clipboard.writeText(text);
    setStatus("Copied the curl command.");
  } catch {
    // No clipboard permission (or not a secure context): select the command for a manual copy.
    const range = document.createRange();
    range.selectNodeContents($("curl"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    setStatus(document.execCommand("copy") ? "Copied the curl command." : "Select the command below and copy it.");
  }
}

function start() {
  const key = $("api-key");
  key.value = sessionStorage.getItem(KEY_STORAGE) ?? "";
  key.addEventListener("input", () => {
    if (apiKey()) sessionStorage.setItem(KEY_STORAGE, apiKey());
    else sessionStorage.removeItem(KEY_STORAGE);
  });
  key.addEventListener("change", () => void loadModel());
  $("rank-form").addEventListener("submit", rank);
  $("copy-curl").addEventListener("click", copyCurl);
  $("rank-form").addEventListener("input", showCurl);
  $("documents").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("rank-form").requestSubmit();
  });
  showCurl();
  void loadModel();
}

start();

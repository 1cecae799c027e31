// Rerank with nothing but fetch (Node.js >= 18, Deno, Bun, browsers).
// Run: RERANKD_URL=http://localhost:8000 RERANKD_API_KEY=... npx tsx examples/fetch.ts
const baseUrl = process.env.RERANKD_URL ?? "http://localhost:8000";
const apiKey = process.env.RERANKD_API_KEY; // only if the server was started with --api-key
const model = process.env.RERANKD_MODEL ?? "BAAI/bge-reranker-v2-gemma";

interface RerankResponse {
  results: Array<{ index: number; relevance_score: number; document?: { text: string } }>;
}

const documents = [
  "The capital of China is Beijing.",
  "Gravity is a force that attracts two bodies toward each other.",
  "Paris is the capital of France.",
];

const response = await fetch(`${baseUrl}/v1/rerank`, {
  method: "POST",
  headers: { "Content-Type": "application/json", ...(apiKey ? { Authorization: `Bearer ${apiKey}` } : {}) },
  body: JSON.stringify({ model, query: "What is the capital of China?", documents, top_n: 3 }),
});
if (!response.ok) throw new Error(`rerank failed: ${response.status} ${await response.text()}`);
const { results } = (await response.json()) as RerankResponse;

for (const r of results) console.log(`${r.relevance_score.toFixed(6)}  #${r.index}  ${documents[r.index]}`);

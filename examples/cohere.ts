// Rerank with Cohere's SDK (npm install cohere-ai): point its base URL at rerankd.
// CohereClientV2 calls /v2/rerank; the v1 CohereClient calls /v1/rerank. Both work unchanged.
// Run: RERANKD_URL=http://localhost:8000 RERANKD_API_KEY=... npx tsx examples/cohere.ts
import { CohereClientV2 } from "cohere-ai";

const cohere = new CohereClientV2({
  baseUrl: process.env.RERANKD_URL ?? "http://localhost:8000",
  token: process.env.RERANKD_API_KEY ?? "unused", // any string when the server has no --api-key
});

const documents = [
  "The capital of China is Beijing.",
  "Gravity is a force that attracts two bodies toward each other.",
  "Paris is the capital of France.",
];

const { results } = await cohere.rerank({
  model: process.env.RERANKD_MODEL ?? "BAAI/bge-reranker-v2-gemma",
  query: "What is the capital of China?",
  documents,
  topN: 3,
});

for (const r of results) console.log(`${r.relevanceScore.toFixed(6)}  #${r.index}  ${documents[r.index]}`);

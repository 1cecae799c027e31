// Rerank LangChain documents (npm install @langchain/cohere @langchain/core): CohereRerank takes a
// Cohere client, which is where rerankd's URL goes. Use it as any document compressor, e.g. in a
// ContextualCompressionRetriever.
// Run: RERANKD_URL=http://localhost:8000 RERANKD_API_KEY=... npx tsx examples/langchain.ts
import { CohereRerank } from "@langchain/cohere";
import { Document } from "@langchain/core/documents";
import { CohereClient } from "cohere-ai";

const reranker = new CohereRerank({
  client: new CohereClient({
    baseUrl: process.env.RERANKD_URL ?? "http://localhost:8000",
    token: process.env.RERANKD_API_KEY ?? "unused", // any string when the server has no --api-key
    // The cast is only for this repository, which also has cohere-ai 8 next to the cohere-ai 7 that
    // @langchain/cohere is typed against; with one cohere-ai installed, pass the client as it is.
  }) as unknown as CohereRerank["client"],
  model: process.env.RERANKD_MODEL ?? "BAAI/bge-reranker-v2-gemma",
  topN: 3,
});

const docs = [
  "The capital of China is Beijing.",
  "Gravity is a force that attracts two bodies toward each other.",
  "Paris is the capital of France.",
].map((pageContent, index) => new Document({ pageContent, metadata: { index } }));

const ranked = await reranker.compressDocuments(docs, "What is the capital of China?");

for (const d of ranked) console.log(`${(d.metadata.relevanceScore as number).toFixed(6)}  #${d.metadata.index}  ${d.pageContent}`);

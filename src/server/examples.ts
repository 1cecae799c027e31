/** Request examples for the OpenAPI document: the seed API document's own requests. */
const model = "BAAI/bge-reranker-v2-gemma";

export const examples = {
  rerank: [
    {
      model,
      query: "What is the capital of China?",
      documents: [
        "The capital of China is Beijing.",
        "Gravity is a force that attracts two bodies toward each other.",
        "Paris is the capital of France.",
      ],
    },
    {
      model,
      query: "What is semantic search?",
      documents: [
        "Semantic search retrieves results based on meaning rather than exact keyword overlap.",
        "The boiling point of water is 100°C at sea level.",
        "Reranking improves retrieval quality by rescoring candidate documents.",
      ],
      top_n: 2,
      use_activation: false,
    },
    {
      model,
      query: "What is the role of a reranker in RAG?",
      documents: [
        { text: "A reranker rescoring stage improves RAG by evaluating retrieved documents against the query more precisely." },
        { text: "A tokenizer converts text into tokens before model inference." },
        { text: "A load balancer distributes traffic across multiple servers." },
      ],
      top_n: 2,
    },
  ],
  score: [
    {
      model,
      queries: ["What is the capital of China?", "Explain gravity"],
      documents: [
        "The capital of China is Beijing.",
        "Gravity is a force that attracts two bodies toward each other. It gives weight to physical objects and is responsible for the movement of planets around the sun.",
      ],
    },
    {
      model,
      queries: ["What is vLLM?", "What is vLLM?", "What is vLLM?"],
      documents: [
        "vLLM is an inference and serving engine for large language models.",
        "Beijing is the capital of China.",
        "A vector database stores embeddings for semantic search.",
      ],
    },
  ],
};

/**
 * Request examples for the OpenAPI document (and so the /docs page): every request of the seed API
 * document, named after its section, plus the shapes of the other clients the rerank routes serve
 * (text-embeddings-inference, Cohere). The docs test checks these against the seed itself.
 */
const model = "BAAI/bge-reranker-v2-gemma";

export interface NamedExample {
  summary: string;
  value: Record<string, unknown>;
}

const semanticSearch = {
  query: "What is semantic search?",
  documents: [
    "Semantic search retrieves results based on meaning rather than exact keyword overlap.",
    "The boiling point of water is 100°C at sea level.",
    "Reranking improves retrieval quality by rescoring candidate documents.",
  ],
};

export const rerankExamples: Record<string, NamedExample> = {
  basic: {
    summary: "Rerank documents",
    value: {
      model,
      query: "What is the capital of China?",
      documents: [
        "The capital of China is Beijing.",
        "Gravity is a force that attracts two bodies toward each other.",
        "Paris is the capital of France.",
      ],
    },
  },
  top_n: {
    summary: "Top-N reranking",
    value: {
      model,
      query: "Explain gravity",
      documents: [
        "The capital of China is Beijing.",
        "Gravity is a force that attracts two bodies toward each other. It gives weight to physical objects and is responsible for the movement of planets around the sun.",
        "A neural network is a machine learning model inspired by biological neurons.",
        "Photosynthesis is the process by which plants convert light energy into chemical energy.",
      ],
      top_n: 2,
    },
  },
  search_results: {
    summary: "Rerank search results",
    value: {
      model,
      query: "How do I configure streaming in vLLM?",
      documents: [
        "vLLM exposes an OpenAI-compatible Chat Completions endpoint. Set stream to true to receive Server-Sent Events.",
        "The capital of France is Paris.",
        "Embeddings convert text into dense vectors for semantic search.",
        "Use top_k and top_p to control sampling diversity in generation.",
      ],
      top_n: 3,
    },
  },
  activation: {
    summary: "Rerank with activation control",
    value: { model, ...semanticSearch, top_n: 2, use_activation: true },
  },
  raw_scores: {
    summary: "Raw score mode",
    value: { model, ...semanticSearch, top_n: 2, use_activation: false },
  },
  document_objects: {
    summary: "Rerank with document objects",
    value: {
      model,
      query: "What is the role of a reranker in RAG?",
      documents: [
        { text: "A reranker rescoring stage improves RAG by evaluating retrieved documents against the query more precisely." },
        { text: "A tokenizer converts text into tokens before model inference." },
        { text: "A load balancer distributes traffic across multiple servers." },
      ],
      top_n: 2,
    },
  },
  pipeline: {
    summary: "Retrieval pipeline example",
    value: {
      model,
      query: "How does reranking improve RAG answers?",
      documents: [
        "RAG retrieves external documents and passes relevant context to a language model.",
        "Reranking improves RAG by rescoring first-stage retrieval candidates using a stronger cross-encoder relevance model.",
        "Embeddings are dense vectors that represent text meaning.",
        "KV cache stores attention keys and values during autoregressive decoding.",
        "Hybrid search combines sparse keyword matching and dense semantic retrieval.",
      ],
      top_n: 2,
    },
  },
  parameters: {
    summary: "Multiple rerank parameters",
    value: {
      model,
      query: "Why is my vLLM request returning 404 for chat completions?",
      documents: [
        "Use the base URL ending in /v1 and send chat requests to /v1/chat/completions.",
        "The /v1/embeddings endpoint returns vector embeddings for input text.",
        "A 404 can occur when the client appends /chat/completions to a URL that already includes /chat/completions.",
        "Reranking endpoints return relevance scores, not generated text.",
      ],
      top_n: 3,
      use_activation: true,
      user: "user_123",
    },
  },
  cohere: {
    summary: "Cohere client (results without documents)",
    value: {
      model,
      query: "What is the capital of China?",
      documents: ["The capital of China is Beijing.", "Paris is the capital of France."],
      top_n: 1,
      return_documents: false,
    },
  },
  tei: {
    summary: "text-embeddings-inference client (answer: a bare array)",
    value: {
      query: "What is the capital of China?",
      texts: ["The capital of China is Beijing.", "Paris is the capital of France."],
      raw_scores: false,
      return_text: true,
    },
  },
};

export const scoreExamples: Record<string, NamedExample> = {
  pairs: {
    summary: "Pairwise scoring",
    value: {
      model,
      queries: ["What is the capital of China?", "Explain gravity"],
      documents: [
        "The capital of China is Beijing.",
        "Gravity is a force that attracts two bodies toward each other. It gives weight to physical objects and is responsible for the movement of planets around the sun.",
      ],
    },
  },
  one_query: {
    summary: "One query against many documents with score API",
    value: {
      model,
      queries: ["What is vLLM?", "What is vLLM?", "What is vLLM?"],
      documents: [
        "vLLM is an inference and serving engine for large language models.",
        "Beijing is the capital of China.",
        "A vector database stores embeddings for semantic search.",
      ],
    },
  },
};

/** The examples as JSON Schema `examples` arrays (bodies only). */
export const examples = {
  rerank: Object.values(rerankExamples).map((e) => e.value),
  score: Object.values(scoreExamples).map((e) => e.value),
};

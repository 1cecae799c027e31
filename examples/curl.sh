#!/usr/bin/env bash
# Rerank with curl: vLLM's request shape (Cohere's and Jina's clients send the same fields).
# Run: RERANKD_URL=http://localhost:8000 RERANKD_API_KEY=... bash examples/curl.sh
set -euo pipefail
RERANKD_URL="${RERANKD_URL:-http://localhost:8000}"
RERANKD_MODEL="${RERANKD_MODEL:-BAAI/bge-reranker-v2-gemma}"

curl -sS --fail-with-body -X POST "$RERANKD_URL/v1/rerank" \
  -H "Authorization: Bearer ${RERANKD_API_KEY:-}" \
  -H "Content-Type: application/json" \
  -d '{
  "model": "'"$RERANKD_MODEL"'",
  "query": "What is the capital of China?",
  "documents": [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies toward each other.",
    "Paris is the capital of France."
  ],
  "top_n": 3
}'
echo

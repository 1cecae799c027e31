#!/usr/bin/env bash
# Rerank with text-embeddings-inference's request shape (TEI clients): `texts` instead of
# `documents`; the answer is a bare array of {index, score, text}, best first.
# Run: RERANKD_URL=http://localhost:8000 RERANKD_API_KEY=... bash examples/tei-curl.sh
set -euo pipefail
RERANKD_URL="${RERANKD_URL:-http://localhost:8000}"

curl -sS --fail-with-body -X POST "$RERANKD_URL/rerank" \
  -H "Authorization: Bearer ${RERANKD_API_KEY:-}" \
  -H "Content-Type: application/json" \
  -d '{
  "query": "What is the capital of China?",
  "texts": [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies toward each other.",
    "Paris is the capital of France."
  ],
  "raw_scores": false,
  "return_text": true
}'
echo

"""Rerank from Python with requests (pip install requests).

Run: RERANKD_URL=http://localhost:8000 RERANKD_API_KEY=... python3 examples/python_requests.py
"""
import os

import requests

base_url = os.environ.get("RERANKD_URL", "http://localhost:8000")
api_key = os.environ.get("RERANKD_API_KEY")  # only if the server was started with --api-key
model = os.environ.get("RERANKD_MODEL", "BAAI/bge-reranker-v2-gemma")

documents = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies toward each other.",
    "Paris is the capital of France.",
]

response = requests.post(
    f"{base_url}/v1/rerank",
    headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
    json={"model": model, "query": "What is the capital of China?", "documents": documents, "top_n": 3},
    timeout=60,
)
response.raise_for_status()

for result in response.json()["results"]:
    print(f"{result['relevance_score']:.6f}  #{result['index']}  {documents[result['index']]}")

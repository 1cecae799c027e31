#!/usr/bin/env node
// The container health check: exits 0 when rerankd's /health answers 200, 1 otherwise (503 while the
// model loads or the server drains, or no answer at all). The image's HEALTHCHECK runs it with the
// image's own node (the slim and CUDA base images have no curl).
//
//   node healthcheck.mjs [URL]     default: $RERANKD_HEALTH_URL, else http://127.0.0.1:8000/health
//
// Set RERANKD_HEALTH_URL when the server listens on another port than 8000.
const url = process.argv[2] ?? process.env.RERANKD_HEALTH_URL ?? "http://127.0.0.1:8000/health";
const timeoutMs = Number(process.env.RERANKD_HEALTH_TIMEOUT_MS ?? 4000);
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await response.arrayBuffer();
  process.exit(response.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}

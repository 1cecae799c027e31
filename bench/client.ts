/**
 * A load client in its own process (so its work does not run on the server's event loop): reads
 * {url, requests: [{query, documents}]} as JSON on stdin, sends the requests one after another to
 * /v1/rerank, and prints {seconds: [...], wall} as JSON.
 */
import { rerank } from "./server.js";

let input = "";
for await (const chunk of process.stdin) input += String(chunk);
const job = JSON.parse(input) as { url: string; requests: Array<{ query: string; documents: string[] }> };
const seconds: number[] = [];
const started = performance.now();
for (const request of job.requests) seconds.push((await rerank(job.url, request.query, request.documents)).seconds);
process.stdout.write(JSON.stringify({ seconds, wall: (performance.now() - started) / 1000 }));

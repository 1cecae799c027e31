/**
 * Preloaded (`node --import`) into the TypeScript examples when the tests run them: their fetch —
 * and so Cohere's and LangChain's — may reach 127.0.0.1 only. A refused URL fails the run with
 * exit code 97 and names the URL on stderr.
 */
import { loopbackFetch, quietSdkEnvironment } from "../clients/loopback.js";

quietSdkEnvironment();
const guard = loopbackFetch();
globalThis.fetch = guard.fetch;
process.on("exit", () => {
  if (guard.refused.length > 0) {
    process.stderr.write(`refused off-loopback requests: ${guard.refused.join(", ")}\n`);
    process.exitCode = 97;
  }
});

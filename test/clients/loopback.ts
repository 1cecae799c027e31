/**
 * Client SDKs under test may add telemetry or retries that try the internet. These tests allow
 * them only the server under test: a fetch that refuses (and records) any URL off 127.0.0.1, and
 * an environment with every SDK's tracing switched off and no stray credentials.
 */

export interface LoopbackFetch {
  fetch: typeof fetch;
  /** Every URL the SDKs asked for, in order. */
  requests: Array<{ method: string; url: URL; headers: Headers; body: string | null }>;
  /** URLs refused because they were not on 127.0.0.1. */
  refused: string[];
}

const inputUrl = (input: Parameters<typeof fetch>[0]): string =>
  typeof input === "string" ? input : input instanceof URL ? input.href : input.url;

export function loopbackFetch(inner: typeof fetch = globalThis.fetch): LoopbackFetch {
  const requests: LoopbackFetch["requests"] = [];
  const refused: string[] = [];
  const guarded: typeof fetch = async (input, init) => {
    const url = new URL(inputUrl(input));
    if (url.hostname !== "127.0.0.1") {
      refused.push(url.href);
      throw new Error(`test network guard: ${url.href} is not the server under test`);
    }
    const fromRequest = input instanceof Request ? input : null;
    requests.push({
      method: init?.method ?? fromRequest?.method ?? "GET",
      url,
      headers: new Headers(init?.headers ?? fromRequest?.headers),
      body: typeof init?.body === "string" ? init.body : null,
    });
    return inner(input, init);
  };
  return { fetch: guarded, requests, refused };
}

/** Switches off LangChain/LangSmith tracing and removes SDK credentials that would reach a cloud. */
export function quietSdkEnvironment(): void {
  for (const name of ["LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING", "LANGSMITH_TRACING", "LANGSMITH_TRACING_V2"]) process.env[name] = "false";
  for (const name of ["LANGCHAIN_API_KEY", "LANGSMITH_API_KEY", "CO_API_KEY", "COHERE_API_KEY", "CO_API_URL", "JINA_API_KEY"]) delete process.env[name];
}

/**
 * Debian's chromium driven by playwright-core, as the playground and docs tests use it: headless,
 * a fresh profile, and the flags that keep it off the network (this machine has none: without them
 * chromium keeps trying Google's hosts). Every request a page makes is checked: only the server
 * under test (127.0.0.1) is let through; anything else is aborted and recorded, and the tests
 * assert that nothing was.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here, or null when they can. */
export function browserUnavailable(): string | null {
  return existsSync(CHROMIUM)
    ? null
    : `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does`;
}

export interface Browser {
  context: BrowserContext;
  /** URLs the pages tried to reach off the loopback address (aborted). */
  offLoopback: string[];
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(path.join(tmpdir(), "rerankd-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
    viewport: { width: 1100, height: 900 },
  });
  const offLoopback: string[] = [];
  await context.route("**/*", async (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === "data:" || url.hostname === "127.0.0.1") return route.continue();
    offLoopback.push(url.href);
    return route.abort();
  });
  return {
    context,
    offLoopback,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

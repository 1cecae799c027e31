import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { createConsoleProgress, formatBytes } from "../../../src/models/hub/index.js";

function sink(isTTY: boolean): { out: string[]; output: { write(s: string): void; isTTY: boolean; columns: number } } {
  const out: string[] = [];
  return { out, output: { write: (s: string) => void out.push(s), isTTY, columns: 200 } };
}

const MiB = 1024 * 1024;

describe("console progress", () => {
  test("formatBytes", () => {
    assert.equal(formatBytes(0), "0 B");
    assert.equal(formatBytes(1536), "1.50 KiB");
    assert.equal(formatBytes(5 * 1024 * MiB), "5.00 GiB");
    assert.equal(formatBytes(123.4 * MiB), "123.4 MiB");
  });

  test("on a TTY: one line redrawn in place with bytes, %, rate and file", () => {
    let now = 0;
    const { out, output } = sink(true);
    const p = createConsoleProgress({ output, now: () => now, redrawIntervalMs: 100 });
    p.begin({ label: "acme/rr@main", files: 1, totalBytes: 100 * MiB });
    p.update("model.safetensors", 0, 100 * MiB);
    for (let i = 1; i <= 10; i++) {
      now += 50; // every other update is within the redraw interval
      p.update("model.safetensors", i * 5 * MiB, 100 * MiB);
    }
    const draws = out.filter((s) => s.startsWith("\r\x1b[2K"));
    assert.ok(draws.length >= 5 && draws.length <= 7, `throttled redraws: ${draws.length}`);
    assert.ok(!out.slice(0, -1).some((s) => s.includes("\n")), "no newline while running");
    const last = draws[draws.length - 1];
    assert.match(last, /acme\/rr@main \[#+-+\]/);
    assert.match(last, /50\.0 MiB \/ 100\.0 MiB {2}50\.0%/);
    assert.match(last, /100\.0 MiB\/s/); // 50 MiB in 500 ms
    assert.match(last, /model\.safetensors$/);
    p.end(true);
    assert.match(out.join(""), /\nacme\/rr@main: downloaded 50\.0 MiB in 1s\n$/);
  });

  test("in a log: at most one line every few seconds, plus begin and end lines", () => {
    let now = 0;
    const { out, output } = sink(false);
    const p = createConsoleProgress({ output, now: () => now, logIntervalMs: 5000 });
    p.begin({ label: "acme/rr@main", files: 2, totalBytes: 10 * MiB });
    for (let i = 1; i <= 100; i++) {
      now += 200; // 20 s in total
      p.update(i <= 50 ? "a.safetensors" : "b.safetensors", ((i - 1) % 50 + 1) * 0.1 * MiB, 5 * MiB);
    }
    p.end(true);
    assert.equal(out[0], "Downloading acme/rr@main: 2 files, 10.0 MiB\n");
    const middle = out.slice(1, -1);
    assert.equal(middle.length, 4, middle.join(""));
    for (const line of middle) {
      assert.match(line, /^acme\/rr@main: [\d.]+ [KM]iB \/ 10\.0 MiB {2}[\d.]+% {2}[\d.]+ [KM]iB\/s \([ab]\.safetensors\)\n$/);
      assert.ok(!line.includes("\r"));
    }
    assert.match(out[out.length - 1], /^acme\/rr@main: downloaded 10\.0 MiB in 20s\n$/);
  });

  test("a resumed prefix counts as done but not in the rate; a restart goes back", () => {
    let now = 0;
    const { out, output } = sink(false);
    const p = createConsoleProgress({ output, now: () => now, logIntervalMs: 1000 });
    p.begin({ label: "r", files: 1, totalBytes: 100 });
    p.update("f", 60, 100); // resumed from 60
    now = 1000;
    p.update("f", 70, 100);
    assert.match(out[out.length - 1], /70 B \/ 100 B {2}70\.0% {2}10 B\/s/);
    now = 2000;
    p.update("f", 0, 100); // server ignored Range: restart
    assert.match(out[out.length - 1], /0 B \/ 100 B {2}0\.0%/);
    p.warn("low disk");
    assert.equal(out[out.length - 1], "warning: low disk\n");
    p.end(false);
    assert.match(out[out.length - 1], /download stopped after 2s \(0 B on disk, it will resume\)/);
  });
});

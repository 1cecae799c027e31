/**
 * What the machine is and what else is running on it: the bench shares a small machine with
 * other work, so every measurement records the CPU time other processes took meanwhile.
 */
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, hostname, loadavg, totalmem } from "node:os";

export interface MachineInfo {
  host: string;
  cpu: string;
  cores: number;
  availableParallelism: number;
  memoryGiB: number;
  node: string;
  nodeLlamaCpp: string;
}

export function machineInfo(): MachineInfo {
  const pkg = JSON.parse(readFileSync(new URL("../node_modules/node-llama-cpp/package.json", import.meta.url), "utf8")) as { version: string };
  return {
    host: hostname(),
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    availableParallelism: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    nodeLlamaCpp: pkg.version,
  };
}

export const uptimeLoad = (): string => loadavg().map((l) => l.toFixed(2)).join(", ");

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function machineBusyTicks(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
  return fields.reduce((a, b) => a + b, 0) - fields[3] - (fields[4] ?? 0);
}

function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[11] = utime, fields[12] = stime (1-based 14 and 15 in proc(5))
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/**
 * Measures, over an interval, how many cores other processes kept busy on average: the machine's
 * busy time minus this process's and the watched processes' (the server).
 */
export class ForeignLoad {
  private readonly startBusy = machineBusyTicks();
  private readonly startOwn: number;
  private readonly started = performance.now();

  constructor(private readonly pids: () => number[]) {
    this.startOwn = this.own();
  }

  private own(): number {
    return [process.pid, ...this.pids()].reduce((n, pid) => n + processTicks(pid), 0);
  }

  /** Average cores used by other processes since construction. */
  stop(): number {
    const seconds = (performance.now() - this.started) / 1000;
    if (seconds <= 0) return 0;
    const busy = machineBusyTicks() - this.startBusy;
    const own = this.own() - this.startOwn;
    return Math.max(0, (busy - own) / TICKS_PER_SECOND / seconds);
  }
}

/** Peak and current resident memory of a process, from /proc (bytes). */
export function memoryOf(pid: number): { peakRss: number; rss: number; rssFile: number; rssAnon: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { peakRss: kb("VmHWM"), rss: kb("VmRSS"), rssFile: kb("RssFile"), rssAnon: kb("RssAnon") };
}

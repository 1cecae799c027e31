// Download progress. The downloader reports absolute byte counts per file to a ProgressReporter; the console
// reporter turns them into a single redrawn line on a TTY (bytes, %, rate, current file) or, when the output
// is a log (not a TTY), into one line at most every few seconds.

export interface ProgressTask {
  /** What is being downloaded, e.g. `BAAI/bge-reranker-v2-gemma@main`. */
  label: string;
  /** Number of files that will be transferred (cached ones excluded). */
  files: number;
  /** Bytes of those files, when known (already-downloaded parts of resumed files included). */
  totalBytes: number | undefined;
}

export interface ProgressReporter {
  begin(task: ProgressTask): void;
  /** `done` bytes of `file` are on disk (absolute; it may go back to 0 when a download restarts). */
  update(file: string, done: number, size: number | undefined): void;
  warn(message: string): void;
  end(ok: boolean): void;
}

export const silentProgress: ProgressReporter = {
  begin: () => undefined,
  update: () => undefined,
  warn: () => undefined,
  end: () => undefined,
};

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ConsoleProgressOptions {
  /** Where to write (default process.stderr). */
  output?: ProgressOutput;
  /** Force TTY / log mode (default: output.isTTY). */
  tty?: boolean;
  /** Minimum time between two log lines in log mode (default 5000 ms). */
  logIntervalMs?: number;
  /** Minimum time between two redraws in TTY mode (default 100 ms). */
  redrawIntervalMs?: number;
  now?: () => number;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

const RATE_WINDOW_MS = 5000;

/** Tracks per-file progress, the overall total and a transfer rate over the last few seconds. */
class ProgressState {
  task: ProgressTask = { label: "", files: 0, totalBytes: undefined };
  readonly done = new Map<string, number>();
  readonly sizes = new Map<string, number | undefined>();
  transferred = 0;
  current = "";
  startedAt = 0;
  private samples: Array<{ t: number; bytes: number }> = [];

  constructor(private readonly now: () => number) {}

  begin(task: ProgressTask): void {
    this.task = task;
    this.done.clear();
    this.sizes.clear();
    this.transferred = 0;
    this.startedAt = this.now();
    this.samples = [{ t: this.startedAt, bytes: 0 }];
  }

  update(file: string, done: number, size: number | undefined): void {
    const previous = this.done.get(file);
    // The first report of a file may include a resumed prefix: that was not transferred now.
    if (previous !== undefined && done > previous) this.transferred += done - previous;
    this.done.set(file, done);
    this.sizes.set(file, size);
    this.current = file;
    const t = this.now();
    this.samples.push({ t, bytes: this.transferred });
    while (this.samples.length > 2 && t - this.samples[1].t > RATE_WINDOW_MS) this.samples.shift();
  }

  get bytesDone(): number {
    let sum = 0;
    for (const v of this.done.values()) sum += v;
    return sum;
  }

  get total(): number | undefined {
    if (this.task.totalBytes !== undefined) return this.task.totalBytes;
    let sum = 0;
    for (const v of this.sizes.values()) {
      if (v === undefined) return undefined;
      sum += v;
    }
    return this.sizes.size > 0 ? sum : undefined;
  }

  /** Bytes per second over the rate window, or undefined before there is anything to measure. */
  get rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const dt = last.t - first.t;
    return dt > 0 ? ((last.bytes - first.bytes) * 1000) / dt : undefined;
  }

  summary(): string {
    const total = this.total;
    const done = this.bytesDone;
    const parts = [total !== undefined ? `${formatBytes(done)} / ${formatBytes(total)}` : formatBytes(done)];
    if (total !== undefined && total > 0) parts.push(`${((100 * done) / total).toFixed(1)}%`);
    const rate = this.rate;
    if (rate !== undefined) parts.push(`${formatBytes(Math.round(rate))}/s`);
    return parts.join("  ");
  }
}

export function createConsoleProgress(options: ConsoleProgressOptions = {}): ProgressReporter {
  const output: ProgressOutput = options.output ?? process.stderr;
  const tty = options.tty ?? output.isTTY === true;
  const now = options.now ?? (() => Date.now());
  const logInterval = options.logIntervalMs ?? 5000;
  const redrawInterval = options.redrawIntervalMs ?? 100;
  const state = new ProgressState(now);
  let lastWrite = -Infinity;
  let lineOpen = false;

  const bar = (fraction: number, width: number): string => {
    const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
    return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
  };

  const drawLine = (): void => {
    const total = state.total;
    const fraction = total !== undefined && total > 0 ? state.bytesDone / total : 0;
    let line = `${state.task.label} ${bar(fraction, 20)} ${state.summary()}  ${state.current}`;
    const columns = output.columns ?? 100;
    if (line.length > columns - 1) line = line.slice(0, Math.max(10, columns - 2)) + "…";
    output.write(`\r\x1b[2K${line}`);
    lineOpen = true;
  };

  const closeLine = (): void => {
    if (lineOpen) output.write("\n");
    lineOpen = false;
  };

  return {
    begin(task) {
      state.begin(task);
      lastWrite = now();
      const size = task.totalBytes !== undefined ? `, ${formatBytes(task.totalBytes)}` : "";
      if (tty) {
        drawLine();
      } else {
        output.write(`Downloading ${task.label}: ${task.files} file${task.files === 1 ? "" : "s"}${size}\n`);
      }
    },
    update(file, done, size) {
      state.update(file, done, size);
      const t = now();
      if (tty) {
        if (t - lastWrite >= redrawInterval) {
          lastWrite = t;
          drawLine();
        }
      } else if (t - lastWrite >= logInterval) {
        lastWrite = t;
        output.write(`${state.task.label}: ${state.summary()} (${file})\n`);
      }
    },
    warn(message) {
      closeLine();
      output.write(`warning: ${message}\n`);
    },
    end(ok) {
      const elapsed = formatDuration(now() - state.startedAt);
      if (tty) {
        drawLine();
        closeLine();
      }
      const done = formatBytes(state.bytesDone);
      output.write(
        ok
          ? `${state.task.label}: downloaded ${done} in ${elapsed}\n`
          : `${state.task.label}: download stopped after ${elapsed} (${done} on disk, it will resume)\n`,
      );
    },
  };
}

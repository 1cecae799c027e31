/** Prometheus instruments. One registry per server instance, so tests can run several servers. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { SchedulerEvents } from "../engine/scheduler.js";

export interface QueueProbe {
  queuedRequests: number;
  queuedPairs?: number;
  queuedTokens: number;
  busyLanes: number;
}

export class Metrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: "rerankd_requests_total",
    help: "HTTP requests by route and status code.",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });

  readonly requestSeconds = new Histogram({
    name: "rerankd_request_duration_seconds",
    help: "End-to-end request latency by route.",
    labelNames: ["route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly promptTokens = new Counter({
    name: "rerankd_prompt_tokens_total",
    help: "Tokens of all scored pairs, template included (what `usage` reports).",
    registers: [this.registry],
  });

  readonly evaluatedTokens = new Counter({
    name: "rerankd_evaluated_tokens_total",
    help: "Tokens actually run through the model (prompt tokens minus reused prefixes).",
    registers: [this.registry],
  });

  readonly pairs = new Counter({
    name: "rerankd_pairs_total",
    help: "Query-document pairs scored.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly queueSeconds = new Histogram({
    name: "rerankd_request_queue_seconds",
    help: "Time a scoring request waited in the scheduler's queue before its first pair was evaluated.",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly inferenceSeconds = new Histogram({
    name: "rerankd_request_inference_seconds",
    help: "Time from a scoring request's first evaluated pair to its last.",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly batchSize = new Histogram({
    name: "rerankd_batch_size",
    help: "Pairs started together in one scheduling step (decoded in one llama.cpp batch).",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  readonly rejected = new Counter({
    name: "rerankd_requests_rejected_total",
    help: "Requests refused or ended by the server's protections: queue_full (429), rate_limited (429), deadline (504), client_closed, draining (503).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  /** HTTP requests received and not yet answered (set by the app). */
  inFlight = 0;

  constructor(probe: () => QueueProbe | null, modelInfo: () => Record<string, string>) {
    collectDefaultMetrics({ register: this.registry, prefix: "rerankd_" });
    new Gauge({
      name: "rerankd_queue_requests",
      help: "Requests waiting for or in evaluation.",
      registers: [this.registry],
      collect() {
        this.set(probe()?.queuedRequests ?? 0);
      },
    });
    new Gauge({
      name: "rerankd_queue_tokens",
      help: "Tokens of pairs waiting for evaluation.",
      registers: [this.registry],
      collect() {
        this.set(probe()?.queuedTokens ?? 0);
      },
    });
    const inFlight = (): number => this.inFlight;
    new Gauge({
      name: "rerankd_in_flight_requests",
      help: "HTTP requests received and not yet answered.",
      registers: [this.registry],
      collect() {
        this.set(inFlight());
      },
    });
    new Gauge({
      name: "rerankd_queue_pairs",
      help: "Pairs waiting for evaluation.",
      registers: [this.registry],
      collect() {
        this.set(probe()?.queuedPairs ?? 0);
      },
    });
    new Gauge({
      name: "rerankd_running_sequences",
      help: "llama.cpp sequences currently evaluating a pair.",
      registers: [this.registry],
      collect() {
        this.set(probe()?.busyLanes ?? 0);
      },
    });
    const info = new Gauge({
      name: "rerankd_model_info",
      help: "The served model (value 1; labels describe it).",
      labelNames: ["served_model_name", "architecture", "family", "device"] as const,
      registers: [this.registry],
      collect() {
        const labels = modelInfo();
        info.reset();
        if (labels.served_model_name) this.set(labels, 1);
      },
    });
  }

  /** The scheduler's events, feeding the queue/inference latency, batch size and pair histograms. */
  schedulerEvents(): SchedulerEvents {
    return {
      onRequestDone: (info) => {
        if (info.queueSeconds !== null) this.queueSeconds.observe(info.queueSeconds);
        if (info.outcome === "ok") this.inferenceSeconds.observe(info.inferenceSeconds);
      },
      onDispatch: (info) => this.batchSize.observe(info.pairs),
      onPairDone: (info) => {
        if (info.failed) this.pairs.inc({ outcome: "failed" });
      },
    };
  }
}

/** Prometheus instruments. One registry per server instance, so tests can run several servers. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface QueueProbe {
  queuedRequests: number;
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
}

/** Whether the model is loading, ready or failed: the HTTP server listens before the model loads. */
import { ServiceUnavailableError } from "./errors.js";
import type { ServedModel } from "./serving.js";

export type ModelState =
  | { status: "loading" }
  | { status: "ready"; served: ServedModel }
  | { status: "failed"; reason: string }
  | { status: "draining"; served: ServedModel };

export class ModelHolder {
  state: ModelState = { status: "loading" };

  constructor(
    /** The served model name, known before the model loads. */
    readonly servedModelName: string,
  ) {}

  /** The model, for a request that is about to use it; 503 while loading, failed or draining. */
  require(): ServedModel {
    switch (this.state.status) {
      case "ready":
        return this.state.served;
      case "loading":
        throw new ServiceUnavailableError("The model is still loading; retry shortly (GET /health answers 200 when ready).");
      case "draining":
        throw new ServiceUnavailableError("The server is shutting down.");
      case "failed":
        throw new ServiceUnavailableError("The model failed to load; see the server log.");
    }
  }

  /** The model, if loaded, whatever the server is doing (for metrics and info routes). */
  peek(): ServedModel | null {
    return this.state.status === "ready" || this.state.status === "draining" ? this.state.served : null;
  }
}

/** The HTTP app over a FakeBackend, in-process: for protocol tests that need no real model. */
import { buildApp } from "../../src/server/app.js";
import { ModelHolder } from "../../src/server/model-state.js";
import type { TruncationMode } from "../../src/families/types.js";
import { Scheduler } from "../../src/engine/scheduler.js";
import { flagLlmFamily } from "../../src/families/flag-llm/family.js";
import { FakeBackend } from "./fake-backend.js";

/**
 * Marks `model` ready, serving a small FlagEmbedding-style LLM template over the fake backend's
 * code-point tokenizer through `scheduler`; returns the bound family. Shared by fakeApp and the
 * hardened harness of test/server, which differ only in how they build the app and scheduler.
 */
export function serveFakeModel(
  model: ModelHolder,
  backend: FakeBackend,
  scheduler: Scheduler,
  options: { maxLength?: number; truncation?: TruncationMode } = {},
) {
  const family = flagLlmFamily({
    name: "fake-llm",
    architectures: ["fake"],
    queryPrefix: "A: ",
    passagePrefix: "B: ",
    separator: "\n",
    prompt: "P?",
    scoreToken: "Yes",
    defaultMaxLength: 64,
  }).bind(backend.tokenizer);
  model.state = {
    status: "ready",
    served: {
      servedModelName: model.servedModelName,
      root: "fake",
      maxLength: options.maxLength ?? 64,
      truncation: options.truncation ?? "auto",
      family,
      tokenizer: backend.tokenizer,
      scheduler,
      createdAt: 1,
      architecture: "fake",
      device: "cpu",
    },
  };
  return family;
}

export async function fakeApp(options: { apiKeys?: string[]; maxBodyBytes?: number; truncation?: TruncationMode; maxLength?: number } = {}) {
  const backend = new FakeBackend(2);
  const model = new ModelHolder("test-model");
  const family = serveFakeModel(model, backend, new Scheduler(backend), options);
  const { app, metrics } = await buildApp({
    model,
    apiKeys: options.apiKeys ?? [],
    maxBodyBytes: options.maxBodyBytes ?? 1 << 20,
    logger: false,
  });
  await app.ready();
  return { app, backend, model, metrics, family };
}

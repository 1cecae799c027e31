/** The HTTP app over a FakeBackend, in-process: for protocol tests that need no real model. */
import { buildApp } from "../../src/server/app.js";
import { ModelHolder } from "../../src/server/model-state.js";
import { Scheduler } from "../../src/engine/scheduler.js";
import { flagLlmFamily } from "../../src/families/flag-llm/family.js";
import { FakeBackend } from "./fake-backend.js";

export async function fakeApp(options: { apiKeys?: string[]; maxBodyBytes?: number; truncation?: "auto" | "error"; maxLength?: number } = {}) {
  const backend = new FakeBackend(2);
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
  const model = new ModelHolder("test-model");
  model.state = {
    status: "ready",
    served: {
      servedModelName: "test-model",
      root: "fake",
      maxLength: options.maxLength ?? 64,
      truncation: options.truncation ?? "auto",
      family,
      tokenizer: backend.tokenizer,
      scheduler: new Scheduler(backend),
      createdAt: 1,
      architecture: "fake",
      device: "cpu",
    },
  };
  const { app, metrics } = await buildApp({
    model,
    apiKeys: options.apiKeys ?? [],
    maxBodyBytes: options.maxBodyBytes ?? 1 << 20,
    logger: false,
  });
  await app.ready();
  return { app, backend, model, metrics, family };
}

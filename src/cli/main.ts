/** The `rerankd` command: `serve` (the default), `help`. */
import { VERSION } from "../version.js";
import { CONVERT_HELP, parseConvertArgs, runConvert } from "./convert.js";
import { startServer } from "./serve.js";
import { UsageError, parseServeArgs, serveHelp } from "./serve-options.js";

const USAGE = `rerankd ${VERSION}: a reranking server with vLLM's rerank/score API, on llama.cpp

Usage:
  rerankd serve [MODEL] [options]   serve a reranker (see rerankd serve --help)
  rerankd convert SRC -o OUT.gguf   convert a Hugging Face checkpoint to GGUF (see rerankd convert --help)
  rerankd --version
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "--version" || command === "-v") {
    console.log(VERSION);
    return 0;
  }
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return 0;
  }
  if (command === "convert") return convert(rest);
  if (command !== "serve") {
    console.error(`rerankd: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  let options;
  try {
    options = parseServeArgs(rest, process.env);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`rerankd serve: ${error.message}\nSee 'rerankd serve --help'.`);
      return 2;
    }
    throw error;
  }
  if (options === "help") {
    console.log(serveHelp());
    return 0;
  }
  const server = await startServer(options);
  // SIGTERM/SIGINT: drain (in-flight requests finish within --shutdown-timeout, /health says 503),
  // then exit 0; 1 if the timeout cut requests short. A second signal exits at once.
  const shutdownTimeoutMs = options.shutdownTimeoutMs;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`rerankd: ${signal} again: exiting now`);
      process.exit(128 + (signal === "SIGINT" ? 2 : 15));
    }
    stopping = true;
    console.error(`rerankd: ${signal}: draining (up to ${shutdownTimeoutMs / 1000} s; send it again to exit now)`);
    server.shutdown(shutdownTimeoutMs).then(
      (outcome) => {
        console.error(outcome === "drained" ? "rerankd: drained, bye" : "rerankd: shutdown timeout reached with requests still running");
        process.exit(outcome === "drained" ? 0 : 1);
      },
      (error: unknown) => {
        console.error(`rerankd: shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    await server.ready;
  } catch (error) {
    console.error(`rerankd: cannot serve ${options.model}: ${error instanceof Error ? error.message : String(error)}`);
    await server.close();
    return 1;
  }
  return -1;
}

async function convert(argv: string[]): Promise<number> {
  try {
    const parsed = parseConvertArgs(argv);
    if (parsed === "help") {
      console.log(CONVERT_HELP);
      return 0;
    }
    await runConvert(parsed);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`rerankd convert: ${error.message}\nSee 'rerankd convert --help'.`);
      return 2;
    }
    console.error(`rerankd convert: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    console.error(`rerankd: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);

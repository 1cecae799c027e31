/** `npm run cluster -- --replicas 3 MODEL.gguf [rerankd serve flags]`: see ./cli.ts. */
import { runClusterCommand } from "./cli.js";

runClusterCommand(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    console.error(`rerankd cluster: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);

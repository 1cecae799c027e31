#!/usr/bin/env node
// The installed `rerankd` command: runs the TypeScript CLI through tsx's loader, so one source tree
// serves `npm start` from a checkout and the installed binary alike.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");

// Parse each Mermaid file named on the command line with mermaid's own parser.
// Prints "ok FILE" or "error FILE: message" per file; exits 1 when any file fails to parse.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

// mermaid sanitises labels with DOMPurify, which needs a DOM: jsdom's window stands in for a browser's
const { window } = new JSDOM("");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import("mermaid");

mermaid.initialize({ startOnLoad: false });
let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    const result = await mermaid.parse(readFileSync(file, "utf8"));
    if (!result || result.diagramType !== "flowchart-v2") {
      throw new Error(`not a flowchart: ${result && result.diagramType}`);
    }
    console.log(`ok ${file}`);
  } catch (error) {
    failed += 1;
    console.log(`error ${file}: ${String(error.message || error).split("\n").join(" ")}`);
  }
}
process.exit(failed ? 1 : 0);

// The Markdown injection: in every Markdown file given (default: the repository's docs and
// README), the lines of an ```nn block (```nn-error CODE, ```nn file=a.nn, ```nndsl) are nndsl,
// each non-space character with an nndsl scope (invalid ones only in nn-error blocks), and
// nothing outside such blocks is.
// A stand-in host grammar takes the place of VS Code's Markdown grammar (the injection's target).
"use strict";
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const SYNTAXES = path.join(__dirname, "..", "syntaxes");
const GRAMMARS = {
  "source.nndsl": path.join(SYNTAXES, "nndsl.tmLanguage.json"),
  "markdown.nndsl.codeblock": path.join(SYNTAXES, "nndsl.markdown.tmLanguage.json"),
};
const HOST = { scopeName: "text.html.markdown", patterns: [] };

function markdownFiles(root) {
  const docs = path.join(root, "docs");
  const found = [path.join(root, "README.md")];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, entry);
      if (fs.statSync(full).isDirectory()) walk(full);
      else if (entry.endsWith(".md")) found.push(full);
    }
  };
  walk(docs);
  return found;
}

async function main() {
  await oniguruma.loadWASM(fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) => {
      if (scopeName === HOST.scopeName) return vsctm.parseRawGrammar(JSON.stringify(HOST), "host.json");
      const file = GRAMMARS[scopeName];
      return file ? vsctm.parseRawGrammar(fs.readFileSync(file, "utf8"), file) : null;
    },
    getInjections: (scopeName) => (scopeName === HOST.scopeName ? ["markdown.nndsl.codeblock"] : []),
  });
  const grammar = await registry.loadGrammar(HOST.scopeName);
  const files = process.argv.length > 2 ? process.argv.slice(2) : markdownFiles(path.join(__dirname, "..", "..", ".."));
  const problems = [];
  let blocks = 0;
  for (const file of files) {
    let stack = vsctm.INITIAL;
    let fence = null; // the open ```nn block's tag, or null outside one
    fs.readFileSync(file, "utf8").split(/\r?\n/).forEach((line, index) => {
      const where = `${file}:${index + 1}`;
      const opening = fence === null ? /^\s*(`{3,}|~{3,})\s*((?:nn|nndsl)(?:(?:-error\b|\s).*)?)$/i.exec(line) : null;
      const closing = fence !== null && /^\s*(`{3,}|~{3,})\s*$/.test(line);
      const inside = fence !== null && !closing;
      const result = grammar.tokenizeLine(line, stack);
      stack = result.ruleStack;
      for (const token of result.tokens) {
        const text = line.slice(token.startIndex, token.endIndex);
        if (!text.trim()) continue;
        const nndsl = token.scopes.filter((s) => s.endsWith(".nndsl"));
        if (inside && !token.scopes.includes("meta.embedded.block.nndsl")) problems.push(`${where}: ${JSON.stringify(text)} is not embedded nndsl`);
        else if (inside && nndsl.length === 0) problems.push(`${where}: ${JSON.stringify(text)} has no nndsl scope`);
        else if (inside && !fence.startsWith("nn-error") && nndsl.some((s) => s.startsWith("invalid."))) problems.push(`${where}: ${JSON.stringify(text)} is marked invalid`);
        else if (!inside && nndsl.length > 0) problems.push(`${where}: ${JSON.stringify(text)} outside an nn block has nndsl scopes`);
      }
      if (opening) {
        fence = opening[2].toLowerCase();
        blocks += 1;
      } else if (closing) {
        fence = null;
      }
    });
  }
  for (const line of problems) console.error(line);
  console.log(`${files.length} Markdown files, ${blocks} nn blocks, ${problems.length} problems`);
  process.exitCode = problems.length ? 1 : 0;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 2;
});

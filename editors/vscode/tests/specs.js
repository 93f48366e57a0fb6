// Tokenises every spec under the repository's specs/ (specs/bad/ included) with the grammar and
// fails when a non-space character gets no scope beyond the base one, or when a character of a
// valid spec is marked invalid (a spec under specs/bad/ may hold invalid characters: they must be
// marked so). Usage: node tests/specs.js [spec files or folders...] (default: ../../specs).
"use strict";
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const GRAMMAR = path.join(__dirname, "..", "syntaxes", "nndsl.tmLanguage.json");
const BASE = "source.nndsl";

function specFiles(roots) {
  const found = [];
  for (const root of roots) {
    if (fs.statSync(root).isDirectory()) {
      for (const entry of fs.readdirSync(root).sort()) {
        const full = path.join(root, entry);
        if (fs.statSync(full).isDirectory() || entry.endsWith(".nn")) found.push(...specFiles([full]));
      }
    } else {
      found.push(root);
    }
  }
  return found;
}

async function loadGrammar() {
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === BASE ? vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR, "utf8"), GRAMMAR) : null,
  });
  return registry.loadGrammar(BASE);
}

/** The problems of one file: "file:line:col: why" strings. */
function problems(grammar, file) {
  const bad = file.split(path.sep).includes("bad");
  const found = [];
  let stack = vsctm.INITIAL;
  const lines = fs.readFileSync(file, "utf8").split(/\r?\n/);
  lines.forEach((line, index) => {
    const result = grammar.tokenizeLine(line, stack);
    stack = result.ruleStack;
    for (const token of result.tokens) {
      const text = line.slice(token.startIndex, token.endIndex);
      if (!text.trim()) continue;
      const where = `${file}:${index + 1}:${token.startIndex + 1}`;
      const scopes = token.scopes.filter((s) => s !== BASE);
      if (scopes.length === 0) found.push(`${where}: ${JSON.stringify(text)} has only the base scope`);
      else if (!bad && scopes.some((s) => s.startsWith("invalid."))) found.push(`${where}: ${JSON.stringify(text)} is marked invalid`);
    }
  });
  return found;
}

async function main() {
  const roots = process.argv.length > 2 ? process.argv.slice(2) : [path.join(__dirname, "..", "..", "..", "specs")];
  const grammar = await loadGrammar();
  const files = specFiles(roots);
  if (files.length === 0) throw new Error(`no specs under ${roots.join(", ")}`);
  const found = files.flatMap((file) => problems(grammar, file));
  for (const line of found) console.error(line);
  console.log(`${files.length} specs tokenised, ${found.length} problems`);
  process.exitCode = found.length ? 1 : 0;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 2;
});

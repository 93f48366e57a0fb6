// Runs the bundled client (dist/extension.js, built by `npm run build`) against a stand-in for the
// `vscode` module: how it finds the server's executable, and what it does when there is none.
// VS Code itself cannot run here; the language server's own tests drive a real LSP client.
"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const Module = require("module");

/** Any member of the stand-in not given below: a callable, constructible, nestable nothing. */
function anything() {
  return new Proxy(function () {}, {
    get(target, key) {
      if (key === "then") return undefined;
      if (!(key in target)) target[key] = anything();
      return target[key];
    },
    construct: () => anything(),
    apply: () => anything(),
  });
}

function standIn(settings, folder) {
  const seen = { errors: [], commands: new Map(), output: [], configListeners: [] };
  const vscode = anything();
  Object.assign(vscode, {
    workspace: Object.assign(anything(), {
      workspaceFolders: [{ uri: { fsPath: folder } }],
      getConfiguration: () => ({ get: (key, fallback) => (key in settings ? settings[key] : fallback) }),
      onDidChangeConfiguration: (listener) => (seen.configListeners.push(listener), { dispose() {} }),
    }),
    window: Object.assign(anything(), {
      createOutputChannel: () => ({ appendLine: (line) => seen.output.push(line), show() {}, dispose() {} }),
      showErrorMessage: async (message, ...items) => (seen.errors.push({ message, items }), undefined),
    }),
    commands: Object.assign(anything(), {
      registerCommand: (name, callback) => (seen.commands.set(name, callback), { dispose() {} }),
      executeCommand: async () => undefined,
    }),
  });
  return { vscode, seen };
}

function loadClient(vscode) {
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    return request === "vscode" ? "vscode" : resolve.call(this, request, ...rest);
  };
  require.cache.vscode = { id: "vscode", filename: "vscode", loaded: true, exports: vscode };
  const bundle = path.join(__dirname, "..", "dist", "extension.js");
  delete require.cache[bundle];
  return require(bundle);
}

async function main() {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "nndsl-client-"));
  const bin = path.join(folder, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, "nndsl"), "#!/bin/sh\n", { mode: 0o755 });
  fs.mkdirSync(path.join(folder, "nndsl-dir"));
  let checks = 0;

  // the executable: on PATH, as a path, and not a directory
  const { vscode, seen } = standIn({ "server.path": "${workspaceFolder}/missing/nndsl" }, folder);
  const client = loadClient(vscode);
  const env = { PATH: ["/nonexistent", bin].join(path.delimiter) };
  assert.strictEqual(client.findExecutable("nndsl", env), path.join(bin, "nndsl"));
  assert.strictEqual(client.findExecutable("nndsl", { PATH: "/nonexistent" }), undefined);
  assert.strictEqual(client.findExecutable(path.join(bin, "nndsl"), {}), path.join(bin, "nndsl"));
  assert.strictEqual(client.findExecutable(path.join(folder, "nndsl-dir"), {}), undefined);
  assert.strictEqual(client.findExecutable("nndsl-dir", { PATH: folder }), undefined);
  checks += 5;

  // no server: activation registers the commands and says how to install it
  await client.activate({ subscriptions: [] });
  assert.deepStrictEqual([...seen.commands.keys()].sort(), ["nndsl.restartServer", "nndsl.showOutput"]);
  assert.strictEqual(seen.errors.length, 1);
  const { message, items } = seen.errors[0];
  assert.ok(message.includes(`'${folder}/missing/nndsl' was not found`), message);
  assert.ok(message.includes("pip install 'nndsl[lsp]'"), message);
  assert.ok(message.includes('"nndsl.server.path"'), message);
  assert.deepStrictEqual(items, ["Copy Install Command", "Open Settings"]);
  assert.ok(seen.output.some((line) => line.includes("pip install 'nndsl[lsp]'")), seen.output);
  checks += 7;

  // the restart command tries again (and says so again); a change of the server settings restarts
  await seen.commands.get("nndsl.restartServer")();
  assert.strictEqual(seen.errors.length, 2);
  seen.configListeners.forEach((listener) => listener({ affectsConfiguration: (section) => section === "nndsl.server" }));
  seen.configListeners.forEach((listener) => listener({ affectsConfiguration: () => false }));
  await new Promise((done) => setTimeout(done, 50));
  assert.strictEqual(seen.errors.length, 3);
  await client.deactivate();
  checks += 2;

  fs.rmSync(folder, { recursive: true, force: true });
  console.log(`client: ${checks} checks passed`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

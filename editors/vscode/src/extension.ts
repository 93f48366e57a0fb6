// The nndsl extension's client: starts `nndsl lsp` (configurable) over stdio and hands it the
// .nn files; restarts it on demand or when its settings change; says how to install it when the
// executable cannot be found.
import * as fs from "fs";
import * as path from "path";
import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

const INSTALL = "pip install 'nndsl[lsp]'";

let client: LanguageClient | undefined;
let output: vscode.OutputChannel | undefined;

/** The server's command line from the settings, with ${workspaceFolder} and ~ expanded. */
function serverCommand(): { command: string; args: string[] } {
  const config = vscode.workspace.getConfiguration("nndsl");
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? "";
  const home = process.env.HOME ?? process.env.USERPROFILE ?? "";
  const expand = (value: string) =>
    value.replace(/\$\{workspaceFolder\}/g, folder).replace(/^~(?=$|[\\/])/, home);
  const command = expand((config.get<string>("server.path") || "nndsl").trim());
  const args = (config.get<string[]>("server.args") ?? ["lsp"]).map(expand);
  return { command, args };
}

/** The executable `command` names: itself when it is a path, else the first match on PATH. */
export function findExecutable(command: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const isFile = (file: string) => {
    try {
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  };
  const extensions = process.platform === "win32" ? ["", ...(env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";")] : [""];
  if (command.includes("/") || command.includes("\\")) {
    return extensions.map((ext) => command + ext).find(isFile);
  }
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const found = extensions.map((ext) => path.join(dir, command + ext)).find(isFile);
    if (found) return found;
  }
  return undefined;
}

/** The settings the server reads (it also asks for the `nndsl` section itself). */
function initializationOptions(): object {
  const config = vscode.workspace.getConfiguration("nndsl");
  return {
    inlayHints: { enabled: config.get<boolean>("inlayHints.enabled", true) },
    debounceMs: config.get<number>("debounceMs", 150),
  };
}

async function notFound(command: string): Promise<void> {
  const open = "Open Settings";
  const copy = "Copy Install Command";
  const choice = await vscode.window.showErrorMessage(
    `nndsl: the language server's executable '${command}' was not found. Install it with ` +
      `\`${INSTALL}\`, or set "nndsl.server.path" to the nndsl executable (for example the one in your virtual environment).`,
    copy,
    open,
  );
  if (choice === open) {
    await vscode.commands.executeCommand("workbench.action.openSettings", "nndsl.server");
  } else if (choice === copy) {
    await vscode.env.clipboard.writeText(INSTALL);
  }
}

async function start(): Promise<void> {
  const { command, args } = serverCommand();
  const executable = findExecutable(command);
  if (executable === undefined) {
    output?.appendLine(`'${command}' not found on PATH; install it with ${INSTALL}`);
    void notFound(command);
    return;
  }
  const serverOptions: ServerOptions = {
    command: executable,
    args,
    transport: TransportKind.stdio,
    options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "nndsl" },
      { scheme: "untitled", language: "nndsl" },
    ],
    synchronize: { configurationSection: "nndsl" },
    initializationOptions: initializationOptions(),
    outputChannel: output,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
  };
  client = new LanguageClient("nndsl", "nndsl language server", serverOptions, clientOptions);
  try {
    await client.start();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    output?.appendLine(`the language server did not start: ${message}`);
    void vscode.window.showErrorMessage(
      `nndsl: the language server (${executable} ${args.join(" ")}) did not start: ${message}. ` +
        `Does it have the server's dependencies? ${INSTALL}`,
    );
    client = undefined;
  }
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  if (running) {
    try {
      await running.stop();
    } catch {
      // a server that died already has nothing to stop
    }
  }
}

async function restart(): Promise<void> {
  await stop();
  await start();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("nndsl");
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand("nndsl.restartServer", restart),
    vscode.commands.registerCommand("nndsl.showOutput", () => output?.show()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("nndsl.server")) void restart();
    }),
  );
  await start();
}

export function deactivate(): Promise<void> {
  return stop();
}

/**
 * The language client: finds and starts `slm-lsp`, keeps its configuration in
 * step with the `slm.*` settings, and owns the extension's commands.
 *
 * Everything the user sees comes from the server over LSP (inline completion,
 * completion, `window/showMessage`, `slm/status`); this file only wires.
 */
import * as fs from "node:fs";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from "vscode-languageclient/node";
import { resolveServerPath, Resolution } from "./serverPath";
import { RESTART_SETTINGS, readSettings, toDidChangeConfiguration, toInitializationOptions } from "./settings";
import { StatusItem } from "./status";
import { ServerStatus, parseStatus } from "./statusView";

/** Commands this extension registers itself; the server's own ones of the same name are reached through them. */
const OWNED_COMMANDS = new Set(["slm.toggle", "slm.restart", "slm.showLog"]);

function settingsFor(scope?: vscode.ConfigurationScope) {
  return readSettings(vscode.workspace.getConfiguration("slm", scope));
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The interpreter selected in the Python extension, when it is installed; never throws. */
async function pythonInterpreter(): Promise<string | undefined> {
  const python = vscode.extensions.getExtension("ms-python.python");
  if (!python) {
    return undefined;
  }
  try {
    const api = python.isActive ? python.exports : await python.activate();
    const env = api?.environments?.getActiveEnvironmentPath?.(vscode.workspace.workspaceFolders?.[0]?.uri);
    const legacy = api?.settings?.getExecutionDetails?.(vscode.workspace.workspaceFolders?.[0]?.uri)?.execPath?.[0];
    return typeof env?.path === "string" ? env.path : typeof legacy === "string" ? legacy : undefined;
  } catch {
    return undefined;
  }
}

export class SlmClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private readonly log: vscode.LogOutputChannel;
  private readonly status: StatusItem;
  private readonly disposables: vscode.Disposable[] = [];
  /** The last status the server sent, for the e2e run and for tests. */
  lastStatus: ServerStatus | undefined;

  constructor() {
    this.log = vscode.window.createOutputChannel("SLM", { log: true });
    this.status = new StatusItem();
    this.disposables.push(
      this.log,
      this.status,
      vscode.commands.registerCommand("slm.toggle", () => this.toggle()),
      vscode.commands.registerCommand("slm.restart", () => this.restart()),
      vscode.commands.registerCommand("slm.showLog", () => this.log.show(true)),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)),
    );
  }

  async start(): Promise<void> {
    const found = await this.findServer();
    if (!found.ok) {
      this.log.error(`${found.reason}. Tried:\n  ${found.tried.join("\n  ")}`);
      this.status.setClientState("notFound");
      // Not awaited: activation must not wait for the user to dismiss a message.
      void vscode.window.showErrorMessage(`SLM: ${found.reason}.`, "Open Settings", "Show Log").then((choice) => {
        if (choice === "Open Settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", "slm.serverPath");
        } else if (choice === "Show Log") {
          this.log.show(true);
        }
      });
      return;
    }
    this.log.info(`Starting ${found.command} (found via ${found.source})`);
    this.client = this.createClient(found.command);
    this.status.setClientState("starting");
    try {
      await this.client.start();
    } catch (error) {
      this.log.error(`slm-lsp did not start: ${String(error)}`);
      this.status.setClientState("stopped");
      return;
    }
    await this.fetchStatus();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (error) {
        this.log.warn(`stopping slm-lsp: ${String(error)}`);
      }
      await client.dispose();
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /**
   * Flip completion for this workspace. The server owns the state (it remembers
   * it per workspace across restarts), so the extension writes no settings.
   */
  async toggle(): Promise<boolean | undefined> {
    if (!this.client?.isRunning()) {
      void vscode.window.showWarningMessage("SLM: the slm-lsp server is not running.", "Restart").then((choice) => {
        if (choice === "Restart") {
          void this.restart();
        }
      });
      return undefined;
    }
    const result = (await this.client.sendRequest(ExecuteCommandRequest.type, { command: "slm.toggle", arguments: [] })) as
      | { enabled?: unknown }
      | null;
    const enabled = typeof result?.enabled === "boolean" ? result.enabled : undefined;
    if (enabled !== undefined) {
      vscode.window.setStatusBarMessage(`SLM completions ${enabled ? "on" : "off"} for this workspace`, 3000);
    }
    return enabled;
  }

  private async findServer(): Promise<Resolution> {
    const input = {
      configured: settingsFor().serverPath,
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      env: process.env,
      platform: process.platform,
      isExecutable,
    };
    const first = resolveServerPath(input);
    if (first.ok || input.configured !== "") {
      return first;
    }
    const interpreter = await pythonInterpreter();
    return interpreter ? resolveServerPath({ ...input, pythonInterpreter: interpreter }) : first;
  }

  private createClient(command: string): LanguageClient {
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    // No `transport`: with TransportKind.stdio the client would append `--stdio`, which slm-lsp does not take.
    // Plain stdio is the default for an Executable.
    const serverOptions: ServerOptions = { command, args: [], options: { cwd, env: process.env } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      initializationOptions: toInitializationOptions(settingsFor()),
      outputChannel: this.log,
      traceOutputChannel: this.log,
      middleware: {
        workspace: {
          // A server that pulls `workspace/configuration` for "slm" gets the same shape as initializationOptions.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) {
              return result;
            }
            return params.items.map((item, i) =>
              item.section === "slm"
                ? toInitializationOptions(settingsFor(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined))
                : result[i],
            );
          },
        },
      },
    };
    const client = new LanguageClient("slm", "SLM", serverOptions, clientOptions);
    this.skipOwnedServerCommands(client);
    client.onNotification("slm/status", (raw: unknown) => this.onStatus(raw));
    client.onDidChangeState((e) => {
      this.status.setClientState(e.newState === State.Running ? "running" : e.newState === State.Starting ? "starting" : "stopped");
      if (e.newState === State.Running && this.lastStatus) {
        this.status.setStatus(this.lastStatus);
      }
    });
    return client;
  }

  /**
   * vscode-languageclient registers a VS Code command for every command in the
   * server's `executeCommandProvider`; `slm.toggle` is ours (it also persists the
   * choice), so registering it twice would fail. Filter those out.
   */
  private skipOwnedServerCommands(client: LanguageClient): void {
    const feature = client.getFeature(ExecuteCommandRequest.method);
    const register = feature.register.bind(feature);
    feature.register = (data) => {
      const commands = (data.registerOptions.commands ?? []).filter((c) => !OWNED_COMMANDS.has(c));
      register({ ...data, registerOptions: { ...data.registerOptions, commands } });
    };
  }

  private onStatus(raw: unknown): void {
    const status = parseStatus(raw);
    if (!status) {
      this.log.warn(`ignoring a malformed slm/status: ${JSON.stringify(raw)}`);
      return;
    }
    this.lastStatus = status;
    this.status.setStatus(status);
  }

  private async fetchStatus(): Promise<void> {
    try {
      const raw = await this.client?.sendRequest(ExecuteCommandRequest.type, { command: "slm.status", arguments: [] });
      if (raw) {
        this.onStatus(raw);
      }
    } catch (error) {
      this.log.warn(`slm.status: ${String(error)}`);
    }
  }

  private onConfigurationChanged(e: vscode.ConfigurationChangeEvent): void {
    if (RESTART_SETTINGS.some((key) => e.affectsConfiguration(key))) {
      void this.restart();
    } else if (e.affectsConfiguration("slm") && this.client?.isRunning()) {
      void this.client.sendNotification(DidChangeConfigurationNotification.type, toDidChangeConfiguration(settingsFor()));
    }
  }

  dispose(): void {
    void this.stop();
    this.disposables.forEach((d) => d.dispose());
  }
}

/**
 * Just enough of the `vscode` and `vscode-languageclient/node` modules to
 * activate the extension in plain Node (unit tests only; the real editor runs
 * in e2e/run.mjs). `install()` routes `require` of those two names here.
 */
import Module from "node:module";

type Handler = (...args: unknown[]) => unknown;

export interface Recorded {
  commands: Map<string, Handler>;
  config: Record<string, unknown>;
  updates: Array<{ key: string; value: unknown; target: unknown }>;
  errors: string[];
  warnings: string[];
  statusItems: Array<{ text: string; tooltip: unknown; command: unknown; backgroundColor: unknown; visible: boolean }>;
  configListeners: Handler[];
  clients: FakeLanguageClient[];
  /** What the fake server answers to workspace/executeCommand. */
  serverCommands: Record<string, unknown>;
  serverAdvertises: string[];
}

export const recorded: Recorded = {
  commands: new Map(),
  config: {},
  updates: [],
  errors: [],
  warnings: [],
  statusItems: [],
  configListeners: [],
  clients: [],
  serverCommands: {},
  serverAdvertises: [],
};

export function reset(): void {
  recorded.commands.clear();
  recorded.config = {};
  recorded.updates = [];
  recorded.errors = [];
  recorded.warnings = [];
  recorded.statusItems = [];
  recorded.configListeners = [];
  recorded.clients = [];
  recorded.serverCommands = {};
  recorded.serverAdvertises = [];
}

const disposable = { dispose: () => undefined };

export const vscode = {
  StatusBarAlignment: { Left: 1, Right: 2 },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  ThemeColor: class {
    constructor(public id: string) {}
  },
  Uri: { parse: (s: string) => ({ toString: () => s }) },
  window: {
    createOutputChannel: () => ({ info() {}, warn() {}, error() {}, show() {}, dispose() {} }),
    createStatusBarItem: () => {
      const item = {
        text: "",
        tooltip: undefined as unknown,
        command: undefined as unknown,
        backgroundColor: undefined as unknown,
        name: "",
        visible: false,
        show() {
          item.visible = true;
        },
        dispose() {},
      };
      recorded.statusItems.push(item);
      return item;
    },
    showErrorMessage: (message: string) => {
      recorded.errors.push(message);
      return Promise.resolve(undefined);
    },
    showWarningMessage: (message: string) => {
      recorded.warnings.push(message);
      return Promise.resolve(undefined);
    },
    setStatusBarMessage: () => disposable,
  },
  commands: {
    registerCommand: (id: string, handler: Handler) => {
      if (recorded.commands.has(id)) {
        throw new Error(`command '${id}' already exists`);
      }
      recorded.commands.set(id, handler);
      return { dispose: () => recorded.commands.delete(id) };
    },
    executeCommand: (id: string, ...args: unknown[]) => Promise.resolve(recorded.commands.get(id)?.(...args)),
  },
  workspace: {
    workspaceFolders: [{ uri: { fsPath: "/tmp/fake-workspace" } }],
    getConfiguration: () => ({
      get: <T>(key: string, fallback: T): T => (key in recorded.config ? (recorded.config[key] as T) : fallback),
      inspect: (key: string) => (key in recorded.config ? { key, globalValue: recorded.config[key] } : { key }),
      update: (key: string, value: unknown, target: unknown) => {
        recorded.updates.push({ key, value, target });
        recorded.config[key] = value;
        return Promise.resolve();
      },
    }),
    onDidChangeConfiguration: (listener: Handler) => {
      recorded.configListeners.push(listener);
      return disposable;
    },
  },
  extensions: { getExtension: () => undefined },
};

/** Fire onDidChangeConfiguration for `slm.<key>` after changing it. */
export function changeSetting(key: string, value: unknown): void {
  recorded.config[key] = value;
  const event = { affectsConfiguration: (section: string) => `slm.${key}` === section || `slm.${key}`.startsWith(`${section}.`) };
  recorded.configListeners.forEach((l) => l(event));
}

const EXECUTE = "workspace/executeCommand";

export class FakeLanguageClient {
  running = false;
  notifications: Array<{ method: string; params: unknown }> = [];
  requests: Array<{ method: string; params: unknown }> = [];
  registeredServerCommands: string[] = [];
  private serverCommandDisposables: Array<{ dispose(): unknown }> = [];
  private handlers = new Map<string, Handler>();
  private stateListeners: Handler[] = [];
  private executeFeature = {
    register: (data: { registerOptions: { commands?: string[] } }) => {
      for (const c of data.registerOptions.commands ?? []) {
        this.serverCommandDisposables.push(vscode.commands.registerCommand(c, () => undefined));
        this.registeredServerCommands.push(c);
      }
    },
  };

  constructor(
    public id: string,
    public name: string,
    public serverOptions: { command: string },
    public clientOptions: { initializationOptions: unknown; documentSelector: unknown },
  ) {
    recorded.clients.push(this);
  }

  getFeature(method: string) {
    return method === EXECUTE ? this.executeFeature : undefined;
  }

  async start() {
    this.stateListeners.forEach((l) => l({ oldState: 1, newState: 3 }));
    // What the real client does on initialize: register the server's commands.
    this.executeFeature.register({ registerOptions: { commands: recorded.serverAdvertises } });
    this.running = true;
    this.stateListeners.forEach((l) => l({ oldState: 3, newState: 2 }));
  }

  async stop() {
    // Like the real client: the server's commands go away with it.
    this.serverCommandDisposables.forEach((d) => d.dispose());
    this.serverCommandDisposables = [];
    this.running = false;
    this.stateListeners.forEach((l) => l({ oldState: 2, newState: 1 }));
  }

  async dispose() {}

  isRunning() {
    return this.running;
  }

  onNotification(method: string, handler: Handler) {
    this.handlers.set(method, handler);
    return disposable;
  }

  onDidChangeState(listener: Handler) {
    this.stateListeners.push(listener);
    return disposable;
  }

  /** Deliver a server→client notification. */
  notify(method: string, params: unknown) {
    this.handlers.get(method)?.(params);
  }

  async sendRequest(type: { method: string }, params: { command: string }) {
    this.requests.push({ method: type.method, params });
    return type.method === EXECUTE ? recorded.serverCommands[params.command] : undefined;
  }

  async sendNotification(type: { method: string }, params: unknown) {
    this.notifications.push({ method: type.method, params });
  }
}

export const languageClient = {
  LanguageClient: FakeLanguageClient,
  State: { Stopped: 1, Running: 2, Starting: 3 },
  TransportKind: { stdio: 0, ipc: 1, pipe: 2, socket: 3 },
  ExecuteCommandRequest: { type: { method: EXECUTE }, method: EXECUTE },
  DidChangeConfigurationNotification: { type: { method: "workspace/didChangeConfiguration" } },
};

let installed = false;

export function install(): void {
  if (installed) {
    return;
  }
  installed = true;
  const mod = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
  const load = mod._load;
  mod._load = function (request: string, ...rest: unknown[]) {
    if (request === "vscode") {
      return vscode;
    }
    if (request === "vscode-languageclient/node") {
      return languageClient;
    }
    return load.call(this, request, ...rest);
  };
}

/**
 * The server's status (`slm/status` notification, `slm.status` command) and
 * how the status bar shows it.
 *
 * Pure: no `vscode` import; `status.ts` applies a `StatusView` to the item.
 */

export type ServerState = "loading" | "ready" | "indexing" | "disabled" | "error";

export interface ServerStatus {
  state: ServerState;
  message: string;
  model: string;
  adapter: string;
  lastLatencyMs: number | null;
  /** Optional extras: where the last answer came from ("model", "cache", …) and why it ended early ("deadline", …). */
  lastSource?: string;
  lastReason?: string;
  index: { done: number; total: number };
}

/** What the client knows when the server has not said anything (yet). */
export type ClientState = "starting" | "running" | "stopped" | "notFound";

export interface StatusView {
  text: string;
  tooltip: string;
  /** Colours the item: "error" and "warning" map to the status bar theme colours. */
  severity: "normal" | "warning" | "error";
  /** The command run on click. */
  command: "slm.toggle" | "slm.showLog" | "slm.restart";
}

const STATES: readonly ServerState[] = ["loading", "ready", "indexing", "disabled", "error"];

function nonNegative(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : 0;
}

/** Validate a payload from the server; anything unusable gives `undefined`. */
export function parseStatus(raw: unknown): ServerStatus | undefined {
  if (typeof raw !== "object" || raw === null) {
    return undefined;
  }
  const r = raw as Record<string, unknown>;
  if (!STATES.includes(r.state as ServerState)) {
    return undefined;
  }
  const index = (typeof r.index === "object" && r.index !== null ? r.index : {}) as Record<string, unknown>;
  const latency = r.lastLatencyMs;
  return {
    state: r.state as ServerState,
    message: typeof r.message === "string" ? r.message : "",
    model: typeof r.model === "string" ? r.model : "",
    adapter: typeof r.adapter === "string" ? r.adapter : "",
    lastLatencyMs: typeof latency === "number" && Number.isFinite(latency) && latency >= 0 ? latency : null,
    ...(typeof r.lastSource === "string" && r.lastSource ? { lastSource: r.lastSource } : {}),
    ...(typeof r.lastReason === "string" && r.lastReason ? { lastReason: r.lastReason } : {}),
    index: { done: nonNegative(index.done), total: nonNegative(index.total) },
  };
}

/** "12 ms", "1.3 s". */
export function formatLatency(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function baseName(file: string): string {
  return file.split(/[\\/]/).pop() ?? file;
}

function details(status: ServerStatus): string[] {
  const lines: string[] = [];
  if (status.message) {
    lines.push(status.message);
  }
  lines.push(`Model: ${status.model ? baseName(status.model) : "default"}`);
  if (status.adapter) {
    lines.push(`Adapter: ${baseName(status.adapter)}`);
  }
  if (status.lastLatencyMs !== null) {
    const extra = [status.lastSource, status.lastReason].filter(Boolean).join(", ");
    lines.push(`Last completion: ${formatLatency(status.lastLatencyMs)}${extra ? ` (${extra})` : ""}`);
  }
  if (status.index.total > 0) {
    lines.push(`Index: ${status.index.done}/${status.index.total} files`);
  }
  return lines;
}

function fromClient(client: ClientState): StatusView {
  switch (client) {
    case "notFound":
      return {
        text: "$(error) SLM",
        tooltip: "slm-lsp not found. Set slm.serverPath or install slm-lsp (see the log).",
        severity: "error",
        command: "slm.showLog",
      };
    case "stopped":
      return {
        text: "$(debug-disconnect) SLM",
        tooltip: "The slm-lsp server is not running. Click to restart it.",
        severity: "error",
        command: "slm.restart",
      };
    default:
      return { text: "$(loading~spin) SLM", tooltip: "Starting slm-lsp…", severity: "normal", command: "slm.showLog" };
  }
}

/** The status bar item for a server status, or for the client's own state. */
export function renderStatus(status: ServerStatus | undefined, client: ClientState): StatusView {
  if (client !== "running" || status === undefined) {
    return fromClient(client);
  }
  const latency = status.lastLatencyMs === null ? "" : ` ${formatLatency(status.lastLatencyMs)}`;
  const tip = (head: string, tail: string): string => [head, ...details(status), "", tail].join("\n");
  switch (status.state) {
    case "loading":
      return {
        text: "$(loading~spin) SLM",
        tooltip: tip("SLM: loading the model", "Click to turn completions off for this workspace."),
        severity: "normal",
        command: "slm.toggle",
      };
    case "ready":
      return {
        text: `$(sparkle) SLM${latency}`,
        tooltip: tip("SLM: ready", "Click to turn completions off for this workspace."),
        severity: "normal",
        command: "slm.toggle",
      };
    case "indexing": {
      const { done, total } = status.index;
      const progress = total > 0 ? ` ${Math.min(done, total)}/${total}` : "";
      return {
        text: `$(sync~spin) SLM${progress}`,
        tooltip: tip("SLM: indexing the workspace (completions still work)", "Click to turn completions off for this workspace."),
        severity: "normal",
        command: "slm.toggle",
      };
    }
    case "disabled":
      return {
        text: "$(circle-slash) SLM",
        tooltip: tip("SLM: off for this workspace", "Click to turn completions on."),
        severity: "warning",
        command: "slm.toggle",
      };
    case "error":
      return {
        text: "$(error) SLM",
        tooltip: tip("SLM: error", "Click to show the log."),
        severity: "error",
        command: "slm.showLog",
      };
  }
}

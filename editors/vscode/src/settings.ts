/**
 * VS Code settings (`slm.*`) → the server's `initializationOptions`.
 *
 * Pure: no `vscode` import. `readSettings` takes anything with a
 * `get(key, default)` method (a `WorkspaceConfiguration` fits), and bad values
 * (wrong type, out of range) fall back to the documented default so the server
 * never sees them. The defaults here are the ones in package.json.
 */

/** The VS Code settings this extension reads, as plain values. */
export interface SlmSettings {
  enable: boolean;
  serverPath: string;
  model: string;
  adapter: string;
  latencyBudgetMs: number;
  maxLines: number;
  languages: string[];
  exclude: string[];
  cacheEnable: boolean;
  indexEnable: boolean;
}

/** The server's configuration layer (camelCase; the server maps it to snake_case). */
export interface InitializationOptions {
  completion: {
    enable: boolean;
    deadlineMs: number;
    maxLines: number;
    languages: string[];
    exclude: string[];
  };
  model: { path: string; adapter: string };
  cache: { enable: boolean };
  index: { enable: boolean };
}

export const DEFAULTS: Readonly<SlmSettings> = Object.freeze({
  enable: true,
  serverPath: "",
  model: "",
  adapter: "",
  latencyBudgetMs: 200,
  maxLines: 8,
  languages: [],
  exclude: [],
  cacheEnable: true,
  indexEnable: true,
});

/** Limits shared with the `minimum`/`maximum` of package.json. */
const LATENCY_RANGE: [number, number] = [20, 10_000];
const MAX_LINES_RANGE: [number, number] = [1, 100];

/** What `readSettings` needs from a configuration object. */
export interface SettingsSource {
  get<T>(key: string, defaultValue: T): T;
}

function bool(value: unknown, fallback: boolean): boolean {
  return typeof value === "boolean" ? value : fallback;
}

function str(value: unknown, fallback: string): string {
  return typeof value === "string" ? value.trim() : fallback;
}

function int(value: unknown, fallback: number, [lo, hi]: [number, number]): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return fallback;
  }
  return Math.min(hi, Math.max(lo, Math.round(value)));
}

function strings(value: unknown): string[] {
  if (!Array.isArray(value)) {
    return [];
  }
  const items = value.filter((v): v is string => typeof v === "string").map((v) => v.trim());
  return [...new Set(items.filter((v) => v.length > 0))];
}

/** Read the `slm` section into plain, validated values. */
export function readSettings(source: SettingsSource): SlmSettings {
  return {
    enable: bool(source.get("enable", DEFAULTS.enable), DEFAULTS.enable),
    serverPath: str(source.get("serverPath", DEFAULTS.serverPath), DEFAULTS.serverPath),
    model: str(source.get("model", DEFAULTS.model), DEFAULTS.model),
    adapter: str(source.get("adapter", DEFAULTS.adapter), DEFAULTS.adapter),
    latencyBudgetMs: int(source.get("latencyBudgetMs", DEFAULTS.latencyBudgetMs), DEFAULTS.latencyBudgetMs, LATENCY_RANGE),
    maxLines: int(source.get("maxLines", DEFAULTS.maxLines), DEFAULTS.maxLines, MAX_LINES_RANGE),
    languages: strings(source.get<unknown>("languages", [])),
    exclude: strings(source.get<unknown>("exclude", [])),
    cacheEnable: bool(source.get("cache.enable", DEFAULTS.cacheEnable), DEFAULTS.cacheEnable),
    indexEnable: bool(source.get("index.enable", DEFAULTS.indexEnable), DEFAULTS.indexEnable),
  };
}

/** The mapping itself: every server key, from exactly one setting. */
export function toInitializationOptions(settings: SlmSettings): InitializationOptions {
  return {
    completion: {
      enable: settings.enable,
      deadlineMs: settings.latencyBudgetMs,
      maxLines: settings.maxLines,
      languages: [...settings.languages],
      exclude: [...settings.exclude],
    },
    model: { path: settings.model, adapter: settings.adapter },
    cache: { enable: settings.cacheEnable },
    index: { enable: settings.indexEnable },
  };
}

/** The `workspace/didChangeConfiguration` params for these settings. */
export function toDidChangeConfiguration(settings: SlmSettings): { settings: { slm: InitializationOptions } } {
  return { settings: { slm: toInitializationOptions(settings) } };
}

/** Settings whose change needs a new server process rather than a notification. */
export const RESTART_SETTINGS: readonly string[] = ["slm.serverPath"];

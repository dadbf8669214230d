/**
 * VS Code settings (`slm.*`) → the server's `initializationOptions`.
 *
 * Pure: no `vscode` import. `readSettings` takes anything with `get(key, default)`
 * and `inspect(key)` (a `WorkspaceConfiguration` fits). Only what the user set, in
 * any scope, goes to the server: its own defaults, its user config and a
 * project's `.slm-lsp.json` apply to the rest. The defaults and ranges live in the
 * server only (slm_lsp/config.py; package.json repeats them for the Settings UI,
 * and tests/unit/test_config.py keeps the two equal): a value of the wrong type is
 * left out here, a number is rounded to an integer, and the server checks its
 * range (reporting one out of range and keeping its own value).
 */

/** The VS Code settings this extension reads. A server option is undefined unless the user set it. */
export interface SlmSettings {
  serverPath: string; // client only
  enable?: boolean;
  model?: string;
  adapter?: string;
  latencyBudgetMs?: number;
  maxLines?: number;
  languages?: string[];
  exclude?: string[];
  cacheEnable?: boolean;
  indexEnable?: boolean;
}

/** The server's configuration layer (camelCase; the server maps it to snake_case); only keys the user set. */
export interface InitializationOptions {
  completion?: {
    enable?: boolean;
    deadlineMs?: number;
    maxLines?: number;
    languages?: string[];
    exclude?: string[];
  };
  model?: { path?: string; adapter?: string };
  cache?: { enable?: boolean };
  index?: { enable?: boolean };
}

/** Where a setting has a value, as `WorkspaceConfiguration.inspect` tells it. */
export interface SettingScopes {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
  globalLanguageValue?: unknown;
  workspaceLanguageValue?: unknown;
  workspaceFolderLanguageValue?: unknown;
}

/** What `readSettings` needs from a configuration object. */
export interface SettingsSource {
  get<T>(key: string, defaultValue: T): T;
  inspect(key: string): SettingScopes | undefined;
}

/** The value in force for `key` when the user set it in some scope, else undefined. */
function userValue(source: SettingsSource, key: string): unknown {
  const scopes = source.inspect(key);
  if (!scopes) {
    return undefined;
  }
  const set = [
    scopes.globalValue,
    scopes.workspaceValue,
    scopes.workspaceFolderValue,
    scopes.globalLanguageValue,
    scopes.workspaceLanguageValue,
    scopes.workspaceFolderLanguageValue,
  ].some((v) => v !== undefined);
  return set ? source.get<unknown>(key, undefined) : undefined;
}

function bool(value: unknown): boolean | undefined {
  return typeof value === "boolean" ? value : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value.trim() : undefined;
}

function int(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? Math.round(value) : undefined;
}

function strings(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) {
    return undefined;
  }
  const items = value.filter((v): v is string => typeof v === "string").map((v) => v.trim());
  return [...new Set(items.filter((v) => v.length > 0))];
}

/** Read the `slm` section into plain, validated values; server options only where the user set them. */
export function readSettings(source: SettingsSource): SlmSettings {
  const user = (key: string) => userValue(source, key);
  return {
    serverPath: str(source.get("serverPath", "")) ?? "", // client only: empty means look for it
    enable: bool(user("enable")),
    model: str(user("model")),
    adapter: str(user("adapter")),
    latencyBudgetMs: int(user("latencyBudgetMs")),
    maxLines: int(user("maxLines")),
    languages: strings(user("languages")),
    exclude: strings(user("exclude")),
    cacheEnable: bool(user("cache.enable")),
    indexEnable: bool(user("index.enable")),
  };
}

/** `section` without its undefined keys, or undefined when none is left. */
function defined<T extends object>(section: T): T | undefined {
  const entries = Object.entries(section).filter(([, v]) => v !== undefined);
  return entries.length > 0 ? (Object.fromEntries(entries) as T) : undefined;
}

/** The mapping itself: every server key from exactly one setting, and only the ones set. */
export function toInitializationOptions(settings: SlmSettings): InitializationOptions {
  const options: InitializationOptions = {
    completion: defined({
      enable: settings.enable,
      deadlineMs: settings.latencyBudgetMs,
      maxLines: settings.maxLines,
      languages: settings.languages && [...settings.languages],
      exclude: settings.exclude && [...settings.exclude],
    }),
    model: defined({ path: settings.model, adapter: settings.adapter }),
    cache: defined({ enable: settings.cacheEnable }),
    index: defined({ enable: settings.indexEnable }),
  };
  return defined(options) ?? {};
}

/** The `workspace/didChangeConfiguration` params for these settings. */
export function toDidChangeConfiguration(settings: SlmSettings): { settings: { slm: InitializationOptions } } {
  return { settings: { slm: toInitializationOptions(settings) } };
}

/** Settings whose change needs a new server process rather than a notification. */
export const RESTART_SETTINGS: readonly string[] = ["slm.serverPath"];

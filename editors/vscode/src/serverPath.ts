/**
 * Where the `slm-lsp` executable is.
 *
 * Pure: the file system and the environment come in as arguments, so every
 * rule is unit-tested. Order (first hit wins):
 *   1. `slm.serverPath` when set (`~`, `${userHome}`, `${workspaceFolder}`
 *      expanded; a relative path is taken from the first workspace folder).
 *      A set path that is not executable is an error, not a fall-through.
 *   2. `slm-lsp` on PATH.
 *   3. `.venv/bin/slm-lsp` (`.venv\Scripts\slm-lsp.exe`) in each workspace folder.
 *   4. Next to the interpreter selected in the Python extension.
 */
import * as path from "node:path";

export type ServerSource = "setting" | "PATH" | "workspace .venv" | "Python interpreter";

export interface ResolveInput {
  /** `slm.serverPath`, "" when unset. */
  configured: string;
  /** File-system paths of the workspace folders, in order. */
  workspaceFolders: readonly string[];
  /** The Python extension's selected interpreter (a `python` executable), if known. */
  pythonInterpreter?: string;
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  /** True when `file` exists and may be executed. */
  isExecutable: (file: string) => boolean;
}

export type Resolution =
  | { ok: true; command: string; source: ServerSource }
  | { ok: false; tried: string[]; reason: string };

const BASE_NAME = "slm-lsp";

function pathApi(platform: NodeJS.Platform): path.PlatformPath {
  return platform === "win32" ? path.win32 : path.posix;
}

/** File names to try in a directory: `slm-lsp`, or on Windows its PATHEXT forms. */
export function executableNames(platform: NodeJS.Platform, env: ResolveInput["env"]): string[] {
  if (platform !== "win32") {
    return [BASE_NAME];
  }
  const exts = (env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";").filter((e) => e.length > 0);
  return [...exts.map((e) => BASE_NAME + e.toLowerCase()), BASE_NAME];
}

/** Expand `~`, `${userHome}` and `${workspaceFolder}`; make a relative path absolute. */
export function expandConfigured(configured: string, input: ResolveInput): string {
  const p = pathApi(input.platform);
  const home = input.env.HOME ?? input.env.USERPROFILE ?? "";
  const folder = input.workspaceFolders[0] ?? "";
  let value = configured
    .replace(/\$\{userHome\}/g, home)
    .replace(/\$\{workspaceFolder\}/g, folder);
  if (value === "~" || value.startsWith("~/") || value.startsWith("~\\")) {
    value = home + value.slice(1);
  }
  if (!p.isAbsolute(value) && folder !== "") {
    value = p.join(folder, value);
  }
  return p.normalize(value);
}

function candidates(input: ResolveInput): Array<[string, ServerSource]> {
  const p = pathApi(input.platform);
  const names = executableNames(input.platform, input.env);
  const inDir = (dir: string, source: ServerSource): Array<[string, ServerSource]> =>
    names.map((name) => [p.join(dir, name), source]);
  const pathVar = input.env.PATH ?? input.env.Path ?? "";
  const binDir = input.platform === "win32" ? "Scripts" : "bin";
  return [
    ...pathVar
      .split(p.delimiter)
      .filter((dir) => dir.length > 0)
      .flatMap((dir) => inDir(dir, "PATH")),
    ...input.workspaceFolders.flatMap((folder) => inDir(p.join(folder, ".venv", binDir), "workspace .venv")),
    ...(input.pythonInterpreter ? inDir(p.dirname(input.pythonInterpreter), "Python interpreter") : []),
  ];
}

export function resolveServerPath(input: ResolveInput): Resolution {
  if (input.configured.trim() !== "") {
    const command = expandConfigured(input.configured.trim(), input);
    return input.isExecutable(command)
      ? { ok: true, command, source: "setting" }
      : { ok: false, tried: [command], reason: `slm.serverPath is set to ${command}, which is not an executable file` };
  }
  const tried: string[] = [];
  for (const [file, source] of candidates(input)) {
    if (input.isExecutable(file)) {
      return { ok: true, command: file, source };
    }
    tried.push(file);
  }
  return {
    ok: false,
    tried,
    reason: "slm-lsp was not found on PATH, in the workspace's .venv, or next to the selected Python interpreter",
  };
}

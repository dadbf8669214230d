import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  SettingsSource,
  readSettings,
  toDidChangeConfiguration,
  toInitializationOptions,
} from "../src/settings";

/**
 * A `WorkspaceConfiguration`-like source over a flat object of `slm.*` keys
 * (without the prefix), all set by the user, over package.json's defaults.
 */
function source(values: Record<string, unknown>, defaults: Record<string, unknown> = {}): SettingsSource {
  return {
    get<T>(key: string, defaultValue: T): T {
      return (key in values ? values[key] : key in defaults ? defaults[key] : defaultValue) as T;
    },
    inspect(key: string) {
      return { defaultValue: defaults[key], ...(key in values ? { globalValue: values[key] } : {}) };
    },
  };
}

const manifest = JSON.parse(readFileSync("package.json", "utf8"));
const properties = manifest.contributes.configuration.properties as Record<string, { default: unknown; description?: string }>;
/** package.json's defaults, by key without the `slm.` prefix. */
const manifestDefaults = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k.slice(4), v.default]));

describe("readSettings + toInitializationOptions", () => {
  it("sends nothing the user did not set, so the server's defaults apply", () => {
    assert.deepEqual(toInitializationOptions(readSettings(source({}, manifestDefaults))), {});
  });

  it("leaves out an untouched setting beside one the user set, although get() returns its default", () => {
    // So a project's .slm-lsp.json (say, its `exclude`) wins over VS Code's untouched default.
    const withDefaults = source({ maxLines: 4 }, manifestDefaults);
    assert.deepEqual(withDefaults.get<unknown>("exclude", undefined), []);
    const settings = readSettings(withDefaults);
    assert.deepEqual(toInitializationOptions(settings), { completion: { maxLines: 4 } });
    assert.deepEqual(toDidChangeConfiguration(settings), { settings: { slm: { completion: { maxLines: 4 } } } });
  });

  it("sends a setting set in any scope, also one set to its default value", () => {
    const scoped = (scope: string): SettingsSource => ({
      get: <T>(key: string, fallback: T) => (key === "maxLines" ? 8 : fallback) as T,
      inspect: (key: string) => (key === "maxLines" ? { [scope]: 8 } : {}),
    });
    for (const scope of ["globalValue", "workspaceValue", "workspaceFolderValue", "workspaceLanguageValue"]) {
      assert.deepEqual(toInitializationOptions(readSettings(scoped(scope))), { completion: { maxLines: 8 } }, scope);
    }
  });

  it("maps every setting to its server key", () => {
    const settings = readSettings(
      source({
        enable: false,
        model: "/models/q.gguf",
        adapter: "/models/lora.gguf",
        latencyBudgetMs: 350,
        maxLines: 3,
        languages: ["python", "go"],
        exclude: ["**/secrets/**"],
        "cache.enable": false,
        "index.enable": false,
        serverPath: "/opt/slm-lsp",
      }),
    );
    assert.deepEqual(toInitializationOptions(settings), {
      completion: { enable: false, deadlineMs: 350, maxLines: 3, languages: ["python", "go"], exclude: ["**/secrets/**"] },
      model: { path: "/models/q.gguf", adapter: "/models/lora.gguf" },
      cache: { enable: false },
      index: { enable: false },
    });
  });

  it("does not send client-only settings to the server", () => {
    const options = toInitializationOptions(readSettings(source({ serverPath: "/x/slm-lsp" })));
    assert.ok(!JSON.stringify(options).includes("serverPath"));
    assert.ok(!JSON.stringify(options).includes("/x/slm-lsp"));
  });

  it("leaves out values of the wrong type", () => {
    const settings = readSettings(
      source({ enable: "yes", model: 42, latencyBudgetMs: "fast", maxLines: null, languages: "python", "cache.enable": 1 }),
    );
    assert.deepEqual(toInitializationOptions(settings), {});
    assert.equal(readSettings(source({ serverPath: 3 })).serverPath, "");
  });

  it("rounds numbers and leaves their ranges to the server", () => {
    // The server owns the ranges (slm_lsp/config.py): it reports one out of range and keeps its own value.
    assert.equal(readSettings(source({ latencyBudgetMs: 1 })).latencyBudgetMs, 1);
    assert.equal(readSettings(source({ latencyBudgetMs: 1e9 })).latencyBudgetMs, 1e9);
    assert.equal(readSettings(source({ latencyBudgetMs: 150.6 })).latencyBudgetMs, 151);
    assert.equal(readSettings(source({ maxLines: 0 })).maxLines, 0);
    assert.equal(readSettings(source({ maxLines: Number.NaN })).maxLines, undefined);
  });

  it("trims strings and drops empty, duplicate and non-string list items", () => {
    const settings = readSettings(source({ model: "  /m.gguf ", languages: ["python", " python ", "", 3, "rust"] }));
    assert.equal(settings.model, "/m.gguf");
    assert.deepEqual(settings.languages, ["python", "rust"]);
  });

  it("wraps the options as didChangeConfiguration params under `slm`", () => {
    const settings = readSettings(source({ maxLines: 2 }));
    assert.deepEqual(toDidChangeConfiguration(settings), { settings: { slm: { completion: { maxLines: 2 } } } });
  });

  it("returns fresh arrays, so the server payload never aliases the settings", () => {
    const settings = readSettings(source({ languages: ["c"] }));
    const options = toInitializationOptions(settings);
    options.completion?.languages?.push("cpp");
    assert.deepEqual(settings.languages, ["c"]);
  });
});

describe("package.json contributes", () => {

  it("documents every setting", () => {
    for (const [key, spec] of Object.entries(properties)) {
      assert.ok(spec.description && spec.description.length > 10, `${key} has no description`);
    }
  });

  it("has a default of the right type for every server setting (their values: tests/unit/test_config.py)", () => {
    // Each one read as if the user had set it: none is left out as invalid.
    const options = toInitializationOptions(readSettings(source(manifestDefaults)));
    const sent = Object.values(options).flatMap((section) => Object.keys(section ?? {}));
    const clientOnly = ["serverPath", "trace.server"];
    assert.equal(sent.length, Object.keys(manifestDefaults).length - clientOnly.length, JSON.stringify(options));
  });

  it("declares the commands and activates on the supported languages", () => {
    const commands = manifest.contributes.commands.map((c: { command: string }) => c.command).sort();
    assert.deepEqual(commands, ["slm.restart", "slm.showLog", "slm.toggle"]);
    const languages = ["python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust", "java", "c", "cpp"];
    assert.deepEqual(manifest.activationEvents, languages.map((l) => `onLanguage:${l}`));
  });
});

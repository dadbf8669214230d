import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ResolveInput, executableNames, expandConfigured, resolveServerPath } from "../src/serverPath";

function input(executables: string[], overrides: Partial<ResolveInput> = {}): ResolveInput {
  const set = new Set(executables);
  return {
    configured: "",
    workspaceFolders: ["/work/proj"],
    env: { PATH: "/usr/local/bin:/usr/bin", HOME: "/home/me" },
    platform: "linux",
    isExecutable: (file) => set.has(file),
    ...overrides,
  };
}

describe("resolveServerPath", () => {
  it("uses slm.serverPath when it is executable", () => {
    const r = resolveServerPath(input(["/opt/slm/bin/slm-lsp", "/usr/bin/slm-lsp"], { configured: "/opt/slm/bin/slm-lsp" }));
    assert.deepEqual(r, { ok: true, command: "/opt/slm/bin/slm-lsp", source: "setting" });
  });

  it("reports a set but missing slm.serverPath instead of falling back", () => {
    const r = resolveServerPath(input(["/usr/bin/slm-lsp"], { configured: "/nope/slm-lsp" }));
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.reason.includes("/nope/slm-lsp"));
  });

  it("expands ~, ${userHome} and ${workspaceFolder} and resolves relative paths from the workspace", () => {
    const base = input([]);
    assert.equal(expandConfigured("~/bin/slm-lsp", base), "/home/me/bin/slm-lsp");
    assert.equal(expandConfigured("${userHome}/x/slm-lsp", base), "/home/me/x/slm-lsp");
    assert.equal(expandConfigured("${workspaceFolder}/.venv/bin/slm-lsp", base), "/work/proj/.venv/bin/slm-lsp");
    assert.equal(expandConfigured("tools/../.venv/bin/slm-lsp", base), "/work/proj/.venv/bin/slm-lsp");
  });

  it("searches PATH in order", () => {
    const r = resolveServerPath(input(["/usr/bin/slm-lsp", "/usr/local/bin/slm-lsp"]));
    assert.deepEqual(r, { ok: true, command: "/usr/local/bin/slm-lsp", source: "PATH" });
  });

  it("prefers PATH over the workspace .venv", () => {
    const r = resolveServerPath(input(["/work/proj/.venv/bin/slm-lsp", "/usr/bin/slm-lsp"]));
    assert.equal(r.ok && r.source, "PATH");
  });

  it("falls back to the workspace .venv, in every workspace folder", () => {
    const r = resolveServerPath(
      input(["/work/other/.venv/bin/slm-lsp"], { workspaceFolders: ["/work/proj", "/work/other"] }),
    );
    assert.deepEqual(r, { ok: true, command: "/work/other/.venv/bin/slm-lsp", source: "workspace .venv" });
  });

  it("then looks next to the selected Python interpreter", () => {
    const r = resolveServerPath(input(["/envs/slm/bin/slm-lsp"], { pythonInterpreter: "/envs/slm/bin/python3" }));
    assert.deepEqual(r, { ok: true, command: "/envs/slm/bin/slm-lsp", source: "Python interpreter" });
  });

  it("lists everything it tried when nothing is found", () => {
    const r = resolveServerPath(input([], { pythonInterpreter: "/envs/x/bin/python" }));
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && r.tried, [
      "/usr/local/bin/slm-lsp",
      "/usr/bin/slm-lsp",
      "/work/proj/.venv/bin/slm-lsp",
      "/envs/x/bin/slm-lsp",
    ]);
  });

  it("copes with an empty PATH and no workspace", () => {
    const r = resolveServerPath(input([], { env: {}, workspaceFolders: [] }));
    assert.deepEqual(!r.ok && r.tried, []);
  });

  it("uses Scripts\\ and PATHEXT on Windows", () => {
    assert.deepEqual(executableNames("win32", { PATHEXT: ".EXE;.CMD" }), ["slm-lsp.exe", "slm-lsp.cmd", "slm-lsp"]);
    const r = resolveServerPath(
      input(["C:\\proj\\.venv\\Scripts\\slm-lsp.exe"], {
        platform: "win32",
        env: { Path: "C:\\Windows", PATHEXT: ".EXE" },
        workspaceFolders: ["C:\\proj"],
      }),
    );
    assert.deepEqual(r, { ok: true, command: "C:\\proj\\.venv\\Scripts\\slm-lsp.exe", source: "workspace .venv" });
  });
});

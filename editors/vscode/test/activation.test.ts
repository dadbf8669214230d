import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, it } from "node:test";
import { changeSetting, install, recorded, reset } from "./fakes";

install();

const server = join(mkdtempSync(join(tmpdir(), "slm-fake-")), "slm-lsp");
writeFileSync(server, "#!/bin/sh\n");
chmodSync(server, 0o755);

const readyStatus = {
  state: "ready",
  message: "",
  model: "qwen.gguf",
  adapter: "",
  lastLatencyMs: 12,
  index: { done: 0, total: 0 },
};

async function activate() {
  // required only now, after install(), so that it sees the fake modules
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ext = require("../src/extension") as typeof import("../src/extension");
  const context = { subscriptions: [] as Array<{ dispose(): void }> };
  const client = await ext.activate(context as never);
  return { ext, context, client, lc: recorded.clients[0] };
}

describe("activation (mocked vscode)", () => {
  beforeEach(() => {
    reset();
    recorded.config = { serverPath: server, maxLines: 4 };
    recorded.serverCommands = { "slm.status": readyStatus, "slm.toggle": { enabled: false } };
    recorded.serverAdvertises = ["slm.toggle", "slm.status"];
  });

  it("registers the commands and starts the client with the mapped options", async () => {
    const { ext, context, lc } = await activate();
    assert.ok(recorded.commands.has("slm.toggle") && recorded.commands.has("slm.restart") && recorded.commands.has("slm.showLog"));
    assert.equal(lc.serverOptions.command, server);
    // slm-lsp speaks LSP on stdio with no arguments (a `transport` would add `--stdio`).
    assert.deepEqual((lc.serverOptions as { args?: string[] }).args, []);
    assert.equal((lc.serverOptions as { transport?: unknown }).transport, undefined);
    assert.equal(lc.id, "slm");
    // Only what the user set: the server's defaults (and .slm-lsp.json) cover the rest.
    assert.deepEqual(lc.clientOptions.initializationOptions, { completion: { maxLines: 4 } });
    assert.ok(lc.running);
    await ext.deactivate();
    assert.ok(!lc.running);
    context.subscriptions.forEach((d) => d.dispose());
  });

  it("does not register the server's slm.toggle a second time", async () => {
    const { ext, context, lc } = await activate();
    assert.deepEqual(lc.registeredServerCommands, ["slm.status"]);
    await ext.deactivate();
    context.subscriptions.forEach((d) => d.dispose());
  });

  it("shows the server's status and follows slm/status", async () => {
    const { ext, context, lc } = await activate();
    const item = recorded.statusItems[0];
    assert.ok(item.visible);
    assert.equal(item.text, "$(sparkle) SLM 12 ms");
    lc.notify("slm/status", { ...readyStatus, state: "indexing", index: { done: 3, total: 10 } });
    assert.equal(item.text, "$(sync~spin) SLM 3/10");
    lc.notify("slm/status", { state: "bogus" });
    assert.equal(item.text, "$(sync~spin) SLM 3/10");
    await ext.deactivate();
    context.subscriptions.forEach((d) => d.dispose());
  });

  it("re-sends the mapped settings on a configuration change", async () => {
    const { ext, context, lc } = await activate();
    changeSetting("latencyBudgetMs", 500);
    const sent = lc.notifications.at(-1) as { method: string; params: { settings: { slm: { completion: { deadlineMs: number } } } } };
    assert.equal(sent.method, "workspace/didChangeConfiguration");
    assert.equal(sent.params.settings.slm.completion.deadlineMs, 500);
    await ext.deactivate();
    context.subscriptions.forEach((d) => d.dispose());
  });

  it("toggles through the server, which owns the state (no settings are written)", async () => {
    const { ext, context, lc } = await activate();
    const enabled = await recorded.commands.get("slm.toggle")?.();
    assert.equal(enabled, false);
    assert.ok(lc.requests.some((r) => (r.params as { command: string }).command === "slm.toggle"));
    assert.deepEqual(recorded.updates, []);
    await ext.deactivate();
    assert.equal(await recorded.commands.get("slm.toggle")?.(), undefined);
    assert.match(recorded.warnings[0], /not running/);
    await ext.deactivate();
    context.subscriptions.forEach((d) => d.dispose());
  });

  it("restarts on slm.serverPath changes", async () => {
    const { ext, context } = await activate();
    changeSetting("serverPath", server);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(recorded.clients.length, 2);
    assert.ok(!recorded.clients[0].running && recorded.clients[1].running);
    await ext.deactivate();
    context.subscriptions.forEach((d) => d.dispose());
  });

  it("says so, and starts nothing, when the server is missing", async () => {
    recorded.config = { serverPath: "/definitely/not/slm-lsp" };
    const { ext, context } = await activate();
    assert.equal(recorded.clients.length, 0);
    assert.match(recorded.errors[0], /not an executable file/);
    assert.equal(recorded.statusItems[0].text, "$(error) SLM");
    await ext.deactivate();
    context.subscriptions.forEach((d) => d.dispose());
  });
});

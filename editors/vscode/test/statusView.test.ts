import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServerStatus, formatLatency, parseStatus, renderStatus } from "../src/statusView";

const ready: ServerStatus = {
  state: "ready",
  message: "",
  model: "/models/qwen2.5-coder-0.5b-q4_k_m.gguf",
  adapter: "",
  lastLatencyMs: 87.4,
  index: { done: 0, total: 0 },
};

describe("parseStatus", () => {
  it("accepts the server's payload", () => {
    assert.deepEqual(parseStatus({ ...ready }), ready);
  });

  it("rejects unknown states and non-objects", () => {
    assert.equal(parseStatus({ ...ready, state: "sleeping" }), undefined);
    assert.equal(parseStatus(null), undefined);
    assert.equal(parseStatus("ready"), undefined);
  });

  it("fills in missing or malformed fields", () => {
    assert.deepEqual(parseStatus({ state: "indexing", lastLatencyMs: "12", index: { done: -1, total: 9 } }), {
      state: "indexing",
      message: "",
      model: "",
      adapter: "",
      lastLatencyMs: null,
      index: { done: 0, total: 9 },
    });
  });
});

describe("renderStatus", () => {
  it("shows the last latency when ready, and toggles on click", () => {
    const view = renderStatus(ready, "running");
    assert.equal(view.text, "$(sparkle) SLM 87 ms");
    assert.equal(view.command, "slm.toggle");
    assert.equal(view.severity, "normal");
    assert.match(view.tooltip, /Model: qwen2\.5-coder-0\.5b-q4_k_m\.gguf/);
    assert.match(view.tooltip, /Last completion: 87 ms/);
  });

  it("shows no latency before the first completion", () => {
    assert.equal(renderStatus({ ...ready, lastLatencyMs: null }, "running").text, "$(sparkle) SLM");
  });

  it("shows indexing progress", () => {
    const view = renderStatus({ ...ready, state: "indexing", index: { done: 12, total: 340 } }, "running");
    assert.equal(view.text, "$(sync~spin) SLM 12/340");
    assert.match(view.tooltip, /Index: 12\/340 files/);
  });

  it("shows loading, disabled and error", () => {
    assert.equal(renderStatus({ ...ready, state: "loading" }, "running").text, "$(loading~spin) SLM");
    const disabled = renderStatus({ ...ready, state: "disabled" }, "running");
    assert.equal(disabled.text, "$(circle-slash) SLM");
    assert.equal(disabled.severity, "warning");
    const error = renderStatus({ ...ready, state: "error", message: "model file is corrupt" }, "running");
    assert.equal(error.text, "$(error) SLM");
    assert.equal(error.severity, "error");
    assert.equal(error.command, "slm.showLog");
    assert.match(error.tooltip, /model file is corrupt/);
  });

  it("says where the last answer came from and why it stopped, when the server tells", () => {
    const status = parseStatus({ ...ready, lastLatencyMs: 5032, lastSource: "model", lastReason: "deadline" });
    assert.match(renderStatus(status, "running").tooltip, /Last completion: 5\.0 s \(model, deadline\)/);
    assert.equal(parseStatus({ ...ready, lastSource: "", lastReason: 3 })?.lastReason, undefined);
  });

  it("shows the adapter when one is set", () => {
    assert.match(renderStatus({ ...ready, adapter: "C:\\a\\my-lora.gguf" }, "running").tooltip, /Adapter: my-lora\.gguf/);
  });

  it("reflects the client's own state before the server speaks", () => {
    assert.equal(renderStatus(undefined, "starting").text, "$(loading~spin) SLM");
    assert.equal(renderStatus(ready, "stopped").command, "slm.restart");
    const missing = renderStatus(undefined, "notFound");
    assert.equal(missing.severity, "error");
    assert.match(missing.tooltip, /slm\.serverPath/);
  });
});

describe("formatLatency", () => {
  it("uses ms below a second and s above", () => {
    assert.equal(formatLatency(4.4), "4 ms");
    assert.equal(formatLatency(999), "999 ms");
    assert.equal(formatLatency(1340), "1.3 s");
  });
});

// End-to-end: the packaged extension in a real VS Code (code-server) in headless
// Chromium, with the default settings. Types `def add(a, b):` + Enter in a Python
// file and waits for the ghost text that VS Code's automatic request brings (no
// explicit trigger, however long the model takes), accepts it with Tab and checks
// that the file says `return a + b`. Then a late answer for a position the cursor
// has left: in mul.py it must not show while the cursor is on another line, and
// shows when the cursor comes back. Last, the workspace's .slm-lsp.json excludes
// excluded.py, and `slm.exclude` is left untouched: the project file wins (the
// server says "excluded" and no ghost text shows there), while main.py above,
// with the same untouched settings, got its suggestion.
// Saves media/ghost-text.png (the ghost text on screen) and, under e2e/.run/,
// the logs and a screenshot of every failure. Started by scripts/e2e.sh, which
// sets CODE_SERVER_ENTRY, SLM_E2E_VSIX and SLM_LSP_BIN.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync, createWriteStream, existsSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const run = join(here, "e2e", ".run");
const entry = process.env.CODE_SERVER_ENTRY;
const vsix = process.env.SLM_E2E_VSIX;
const serverBin = process.env.SLM_LSP_BIN;
const backend = process.env.SLM_LSP_BACKEND ?? "real model";
// Model load and the first completion on 2 shared CPU cores can take a while.
const READY_TIMEOUT_MS = Number(process.env.SLM_E2E_READY_TIMEOUT_MS ?? 240_000);
// How long the ghost text may take after the last key: a test bound, not a setting.
const GHOST_TIMEOUT_MS = Number(process.env.SLM_E2E_GHOST_TIMEOUT_MS ?? 60_000);
const started = Date.now();
// What the accepted suggestion must put in the file.
const EXPECT = process.env.SLM_E2E_EXPECT ?? "return a + b";
const INITIAL = '"""Small arithmetic helpers."""\n\n';
// For the late answer: the cursor goes to the end of `return`, a space is typed.
const MUL = "def mul(a, b):\n    return";
// The project layer: `stats` makes the server say why it answered as it did (slm/completionStats).
const PROJECT_SETTINGS = { completion: { exclude: ["excluded.py"] }, stats: true };
const EXCLUDED = '"""Kept out of completion by the workspace\'s .slm-lsp.json."""\n\n';
// The fake backend answers at once; slow it so that an answer can be late.
if (process.env.SLM_LSP_BACKEND === "fake") {
  process.env.SLM_LSP_FAKE_MS_PER_TOKEN ??= "150";
}

const log = (msg) => console.log(`e2e [${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const res = await fetch(url);
      if (res.status < 500) {
        return;
      }
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

function prepare() {
  rmSync(run, { recursive: true, force: true });
  const dirs = {
    user: join(run, "user-data"),
    extensions: join(run, "extensions"),
    workspace: join(run, "workspace"),
    browser: join(run, "chromium-profile"),
    config: join(run, "xdg-config"),
  };
  Object.values(dirs).forEach((d) => mkdirSync(d, { recursive: true }));
  mkdirSync(join(dirs.user, "User"), { recursive: true });
  writeFileSync(
    join(dirs.user, "User", "settings.json"),
    JSON.stringify(
      {
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": false,
        "workbench.enableExperiments": false,
        "security.workspace.trust.enabled": false,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoCheckUpdates": false,
        "extensions.autoUpdate": false,
        "extensions.ignoreRecommendations": true,
        "editor.inlineSuggest.enabled": true,
        "editor.minimap.enabled": false,
        "window.commandCenter": false,
        "chat.commandCenter.enabled": false,
        "git.openRepositoryInParentFolders": "never",
        "git.enabled": false,
        // code-server's extension host takes PATH from a login shell, not from this process, so name the server.
        // A wrapper that adds a server-side log file (e2e/.run/slm-lsp.log).
        "slm.serverPath": join(run, "slm-lsp"),
        "slm.trace.server": "messages",
        // No slm.* completion settings: the defaults, as a user has them.
      },
      null,
      2,
    ),
  );
  // A module docstring first, as in a real file.
  writeFileSync(join(dirs.workspace, "main.py"), INITIAL);
  writeFileSync(join(dirs.workspace, "mul.py"), MUL);
  writeFileSync(join(dirs.workspace, "excluded.py"), EXCLUDED);
  writeFileSync(join(dirs.workspace, ".slm-lsp.json"), JSON.stringify(PROJECT_SETTINGS));
  writeFileSync(join(run, "code-server.yaml"), "auth: none\ncert: false\n");
  writeFileSync(
    join(run, "slm-lsp"),
    `#!/bin/sh\nexec "${join(serverBin, "slm-lsp")}" --log-file "${join(run, "slm-lsp.log")}" --log-level debug "$@"\n`,
    { mode: 0o755 },
  );
  return dirs;
}

function codeServerArgs(dirs) {
  return [
    entry,
    "--config",
    join(run, "code-server.yaml"),
    "--user-data-dir",
    dirs.user,
    "--extensions-dir",
    dirs.extensions,
    "--disable-telemetry",
    "--disable-update-check",
    "--disable-workspace-trust",
    "--disable-getting-started-override",
  ];
}

function serverEnv(dirs) {
  // A fresh completion cache each run: answers come from the backend, not from an earlier run.
  return { ...process.env, XDG_CONFIG_HOME: dirs.config, SLM_LSP_CACHE_DIR: join(run, "slm-cache") };
}

async function main() {
  const dirs = prepare();
  const env = serverEnv(dirs);
  log(`backend: ${backend}; slm-lsp: ${serverBin}/slm-lsp`);

  log(`installing ${vsix}`);
  execFileSync("node", [...codeServerArgs(dirs), "--install-extension", vsix], { env, stdio: "inherit" });
  const installed = readdirSync(dirs.extensions).filter((d) => d.startsWith("slm-lsp."));
  if (installed.length !== 1) {
    throw new Error(`extension not installed: ${readdirSync(dirs.extensions)}`);
  }

  const port = await freePort();
  const serverLog = createWriteStream(join(run, "code-server.log"));
  const server = spawn("node", [...codeServerArgs(dirs), "--bind-addr", `127.0.0.1:${port}`, dirs.workspace], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout.pipe(serverLog);
  server.stderr.pipe(serverLog);
  let browser;
  try {
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(dirs.workspace)}`;
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000);
    log(`code-server up on 127.0.0.1:${port}`);

    // A new, empty profile: launchPersistentContext takes it as --user-data-dir.
    browser = await chromium.launchPersistentContext(dirs.browser, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      viewport: { width: 1100, height: 640 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.on("console", (m) => {
      if (m.type() === "error") {
        writeFileSync(join(run, "browser-console.log"), `${m.text()}\n`, { flag: "a" });
      }
    });
    await test(page, url, dirs);
  } catch (error) {
    if (browser) {
      const pages = browser.pages();
      if (pages[0]) {
        await pages[0].screenshot({ path: join(run, "failure.png") }).catch(() => undefined);
        log(`failure screenshot: ${join(run, "failure.png")}`);
      }
    }
    throw error;
  } finally {
    await browser?.close().catch(() => undefined);
    server.kill("SIGTERM");
    copyLogs(dirs);
  }
}

/** The extension's output channel and the extension host log, from code-server's logs folder. */
function copyLogs(dirs) {
  const logs = join(dirs.user, "logs");
  if (!existsSync(logs)) {
    return;
  }
  const found = execFileSync("find", [logs, "-name", "SLM.log", "-o", "-name", "remoteexthost.log"], { encoding: "utf8" });
  for (const file of found.split("\n").filter(Boolean)) {
    const name = file.endsWith("SLM.log") ? "slm-output.log" : "exthost.log";
    writeFileSync(join(run, name), readFileSync(file));
  }
}

/** Run a command by its title from the command palette. */
async function runCommand(page, title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(`>${title}`);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor();
  await page.keyboard.press("Enter");
  await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
}

async function test(page, url, dirs) {
  await page.goto(url);
  await page.locator(".monaco-workbench").waitFor({ timeout: 90_000 });
  log("workbench loaded");

  // Open main.py from the explorer; that activates the extension (onLanguage:python).
  await page.getByRole("treeitem", { name: "main.py" }).click({ timeout: 60_000 });
  const editor = page.locator(".monaco-editor .view-lines").first();
  await editor.waitFor();
  await editor.click();
  await page.keyboard.press("Control+End");
  log("main.py open");

  // The status bar item turns to "$(sparkle) SLM" when the server says ready.
  const status = page.locator(".statusbar-item", { has: page.locator(".codicon-sparkle") }).filter({ hasText: "SLM" });
  const disabled = page.locator(".statusbar-item", { has: page.locator(".codicon-circle-slash") }).filter({ hasText: "SLM" });
  const failed = page
    .locator(".statusbar-item", { has: page.locator(".codicon-error, .codicon-debug-disconnect") })
    .filter({ hasText: "SLM" });
  const first = await Promise.race([
    status.waitFor({ timeout: READY_TIMEOUT_MS }).then(() => "ready"),
    disabled.waitFor({ timeout: READY_TIMEOUT_MS }).then(() => "disabled"),
    failed.waitFor({ timeout: READY_TIMEOUT_MS }).then(() => {
      throw new Error("the SLM status bar item shows an error (see e2e/.run/slm-output.log)");
    }),
  ]);
  if (first === "disabled") {
    // The server remembers a toggle per workspace path; an earlier, interrupted run may have left it off.
    log("server is off for this workspace (left by an earlier run); toggling it on");
    await runCommand(page, "SLM: Toggle for this workspace");
    await status.waitFor({ timeout: 30_000 });
    await editor.click();
    await page.keyboard.press("Control+End");
  }
  log(`server ready: status bar "${(await status.innerText()).trim()}"`);

  await page.keyboard.type("def add(a, b):", { delay: 40 });
  await page.keyboard.press("Enter");
  log("typed `def add(a, b):` + Enter");

  // No explicit trigger: the automatic request that typing made is answered when the model is done.
  const ghost = page.locator(".ghost-text-decoration, .ghost-text").first();
  try {
    await ghost.waitFor({ state: "visible", timeout: GHOST_TIMEOUT_MS });
  } catch (error) {
    throw new Error(`no ghost text within ${GHOST_TIMEOUT_MS} ms of typing (automatic requests only)`, { cause: error });
  }
  const texts = (selector) => page.locator(selector).evaluateAll((els) => els.map((e) => e.textContent ?? ""));
  const inline = (await texts(".ghost-text-decoration")).join("");
  const below = (await texts(".ghost-text")).join(""); // the added lines, as syntax-highlighted spans
  const ghostText = [inline, below].filter(Boolean).join(" ⏎ ").replace(/\u00a0/g, " ");
  log(`ghost text: ${JSON.stringify(ghostText)}`);
  await page.waitForTimeout(300);
  const shot = join(here, "media", "ghost-text.png");
  mkdirSync(dirname(shot), { recursive: true });
  await page.screenshot({ path: shot });
  log(`screenshot: ${shot}`);

  await page.keyboard.press("Tab");
  await ghost.waitFor({ state: "hidden", timeout: 5000 });
  await page.keyboard.press("Control+S");
  const file = join(dirs.workspace, "main.py");
  let text = "";
  for (let i = 0; i < 50 && !text.includes("return"); i++) {
    await page.waitForTimeout(100);
    text = readFileSync(file, "utf8");
  }
  const onScreen = await editor.innerText();
  await page.screenshot({ path: join(run, "accepted.png") });
  log(`main.py after Tab:\n${text}`);
  if (!text.includes(EXPECT) || !onScreen.replace(/\u00a0/g, " ").includes(EXPECT)) {
    throw new Error(`expected ${JSON.stringify(EXPECT)} in the editor; file: ${JSON.stringify(text)}, screen: ${JSON.stringify(onScreen)}`);
  }
  const latency = (await status.innerText().catch(() => "")).trim();
  log(`ghost text accepted with Tab; status bar "${latency}"`);

  // "SLM: Toggle for this workspace" twice: off (status bar says so), then on again.
  await runCommand(page, "SLM: Toggle for this workspace");
  await disabled.waitFor();
  await runCommand(page, "SLM: Toggle for this workspace");
  await status.waitFor();
  log("PASS: toggled off and on again from the command palette");

  await lateAnswerForAnotherLine(page);
  await projectFileWinsOverUntouchedSetting(page);
}

/** The server's log (debug level: every message) from character `from` on. */
function serverLog(from = 0) {
  return readFileSync(join(run, "slm-lsp.log"), "utf8").slice(from);
}

/** Wait until the server's log after `from` matches `pattern`; the match's end, as an offset. */
async function waitForLog(from, pattern, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    const match = pattern.exec(serverLog(from));
    if (match) {
      return { end: from + match.index + match[0].length, text: match[0] };
    }
    if (Date.now() > until) {
      throw new Error(`no ${what} in e2e/.run/slm-lsp.log within ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Open `name` from the explorer, wait until the editor shows `hasText`, put the
 * cursor at the end of the file, and from then on record in the page
 * (`globalThis.slmGhosts`) every ghost text that shows, with the time.
 */
async function openAtEndWatchingGhosts(page, name, hasText) {
  await page.getByRole("treeitem", { name }).click();
  const editor = page.locator(".monaco-editor .view-lines").first();
  await editor.filter({ hasText }).waitFor();
  await editor.click();
  await page.keyboard.press("Control+End");
  await page.evaluate(() => {
    const page = globalThis;
    page.slmGhosts = [];
    const ghostText = () =>
      [...page.document.querySelectorAll(".ghost-text-decoration, .ghost-text")].map((e) => e.textContent ?? "").join("");
    new page.MutationObserver(() => {
      const text = ghostText();
      if (text.trim()) {
        page.slmGhosts.push({ at: Date.now(), text });
      }
    }).observe(page.document.body, { subtree: true, childList: true, characterData: true });
  });
}

/** VS Code's own "Inline suggestions" language status: Loading... while it waits for the provider. */
function languageStatus(page, label) {
  return page.locator(`[id="status.languageStatus"][aria-label*="${label}"]`);
}

/**
 * VS Code's "No inline suggestion available", then 1 s more: past its 300 ms status
 * debounce, time for an answer to show as ghost text, were it going to.
 */
async function settledWithNoSuggestion(page) {
  await languageStatus(page, "No inline suggestion available").waitFor({ timeout: 30_000 });
  await new Promise((r) => setTimeout(r, 1_000));
}

/**
 * A late answer for a position the cursor has left. In mul.py, type a space after
 * `return` (line 2); as soon as the server has the request, move to line 1. A
 * move changes no text, so VS Code keeps the request open and takes its answer,
 * but must show nothing while the cursor is on another line. VS Code shows
 * "Loading..." only when an answer takes over 300 ms (its status is debounced),
 * and a warm server answers sooner, so the test does not wait for it: the
 * answer in the server's log proves the request was kept, not cancelled.
 */
async function lateAnswerForAnotherLine(page) {
  await openAtEndWatchingGhosts(page, "mul.py", "def mul");
  const from = serverLog().length;
  await page.keyboard.type(" ");
  await waitForLog(from, /Request 'textDocument\/inlineCompletion' received/, 30_000, "request after the space");
  // Ctrl+Home, not an arrow key, which an open suggest widget would take.
  await page.keyboard.press("Control+Home");
  const movedAt = await page.evaluate(() => Date.now());
  log("typed a space after `return` in mul.py; moved to line 1 once the server had the request");
  // The answer carries the position it was asked for: line 1 (0-based), after `    return `.
  const answer = await waitForLog(
    from,
    /"result": \{"items": \[\{"insertText": "(?:[^"\\]|\\.)*", "range": \{"start": \{"line": 1, "character": 11\}/,
    GHOST_TIMEOUT_MS,
    "answer with a suggestion for line 2 after `return `",
  );
  log(`the server answered for the old position: ${answer.text.slice(answer.text.indexOf("insertText"), 80)}…`);
  await settledWithNoSuggestion(page);
  const shown = await page.evaluate(() => globalThis.slmGhosts);
  const early = shown.filter((g) => g.at < movedAt);
  if (early.length) {
    throw new Error(`answered before the cursor moved, so nothing was late: ${JSON.stringify(early)}`);
  }
  if (shown.length) {
    throw new Error(`the late answer showed while the cursor was on line 1: ${JSON.stringify(shown)}`);
  }
  log("PASS: VS Code took the late answer and showed nothing on line 1");
}

/**
 * `.slm-lsp.json` excludes excluded.py and `slm.exclude` is untouched (so the
 * extension sends no `exclude`): typing there, the server answers "excluded"
 * (its slm/completionStats, in its log) and VS Code, its requests done, shows no
 * ghost text. main.py, with the same untouched settings, got one above.
 */
async function projectFileWinsOverUntouchedSetting(page) {
  await openAtEndWatchingGhosts(page, "excluded.py", "Kept out of completion");
  const from = serverLog().length;
  await page.keyboard.type("def add(a, b):", { delay: 40 });
  await page.keyboard.press("Enter");
  log("typed `def add(a, b):` + Enter in excluded.py");
  // The answer for the line after Enter (line 3, 0-based), with the reason the server gave.
  const stats = await waitForLog(
    from,
    /"method": "slm\/completionStats"[^\n]*"uri": "[^"]*\/excluded\.py", "line": 3,[^\n]*"reason": "(\w*)"/,
    GHOST_TIMEOUT_MS,
    "completion stats for excluded.py after Enter",
  );
  const reason = /"reason": "(\w*)"/.exec(stats.text)[1];
  if (reason !== "excluded") {
    throw new Error(`excluded.py was answered with reason ${JSON.stringify(reason)}, not "excluded": .slm-lsp.json did not hold`);
  }
  await settledWithNoSuggestion(page);
  const shown = await page.evaluate(() => globalThis.slmGhosts);
  if (shown.length) {
    throw new Error(`ghost text showed in excluded.py: ${JSON.stringify(shown)}`);
  }
  log("PASS: .slm-lsp.json's exclude won over the untouched slm.exclude (server: excluded; no ghost text)");
}

main().then(
  () => {
    console.log("e2e: 1 passed, 0 failed");
  },
  (error) => {
    console.error(error);
    console.log("e2e: 0 passed, 1 failed");
    process.exit(1);
  },
);

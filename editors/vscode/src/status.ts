/** The status bar item, driven by `slm/status` and the client's state. */
import * as vscode from "vscode";
import { ClientState, ServerStatus, renderStatus } from "./statusView";

export class StatusItem implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private status: ServerStatus | undefined;
  private client: ClientState = "starting";

  constructor() {
    this.item = vscode.window.createStatusBarItem("slm.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "SLM completion";
    this.render();
    this.item.show();
  }

  /** The latest status from the server. */
  setStatus(status: ServerStatus): void {
    this.status = status;
    this.render();
  }

  /** The client's own state; a (re)start forgets the server's last status. */
  setClientState(client: ClientState): void {
    if (client !== "running") {
      this.status = undefined;
    }
    this.client = client;
    this.render();
  }

  /** For tests and the e2e run: what the item shows now. */
  get text(): string {
    return this.item.text;
  }

  private render(): void {
    const view = renderStatus(this.status, this.client);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.command = view.command;
    this.item.backgroundColor =
      view.severity === "normal" ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
  }

  dispose(): void {
    this.item.dispose();
  }
}

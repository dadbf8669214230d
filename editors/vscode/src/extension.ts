/** Entry point: activation starts the client, deactivation stops it. Nothing else lives here. */
import * as vscode from "vscode";
import { SlmClient } from "./client";

let client: SlmClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<SlmClient> {
  client = new SlmClient();
  context.subscriptions.push(client);
  await client.start();
  return client;
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

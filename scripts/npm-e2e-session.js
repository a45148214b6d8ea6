// One governed MCP session through `npx -y sigil-hub@VERSION --policy P -- NOTES`
// (scripts/npm-e2e.sh): initialize, tools/list, an approved tools/call that
// the notes server answers, and a blocked one that never reaches it.
"use strict";
const { spawn } = require("node:child_process");
const readline = require("node:readline");

const [version, policy, notes] = process.argv.slice(2);
const child = spawn("npx", ["-y", `sigil-hub@${version}`, "--policy", policy, "--", notes],
  { stdio: ["pipe", "pipe", "pipe"] });
let stderr = "";
child.stderr.on("data", (d) => { stderr += d; });
const waiting = new Map();
readline.createInterface({ input: child.stdout }).on("line", (line) => {
  const msg = JSON.parse(line); // every stdout line must be JSON-RPC
  if (msg.id !== undefined && waiting.has(msg.id)) {
    waiting.get(msg.id)(msg);
    waiting.delete(msg.id);
  }
});
let next = 1;
function request(method, params) {
  const id = next++;
  child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
  return new Promise((resolve) => waiting.set(id, resolve));
}
function fail(why) {
  console.error(`npm-e2e: ${why}\nsigil-hub stderr:\n${stderr}`);
  process.exit(1);
}
const timer = setTimeout(() => fail("timed out"), 120000);

(async () => {
  const init = await request("initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "npm-e2e", version: "1" } });
  if (!init.result) fail("initialize: " + JSON.stringify(init));
  child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
  const list = await request("tools/list", {});
  const names = (list.result?.tools ?? []).map((t) => t.name);
  if (!names.includes("read_note") || !names.includes("delete_note")) fail("tools/list: " + JSON.stringify(names));
  const read = await request("tools/call", { name: "read_note", arguments: { name: "welcome" } });
  if (!read.result || read.result.isError) fail("read_note was not approved and answered: " + JSON.stringify(read));
  const del = await request("tools/call", { name: "delete_note", arguments: { name: "welcome" } });
  if (del.error?.code !== -32001) fail("delete_note was not denied with -32001: " + JSON.stringify(del));
  const again = await request("tools/call", { name: "read_note", arguments: { name: "welcome" } });
  if (!again.result || again.result.isError) fail("the note was deleted although the policy blocks delete_note: " + JSON.stringify(again));
  console.error("npm-e2e: governed session through the installed binary: read_note approved, delete_note denied (-32001), the note still there");
  // A signal reaches the binary through npx and the launcher: the hub
  // shuts down (its upstream with it) and the session ends.
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  child.kill("SIGTERM");
  const { code, signal } = await exited;
  if (code !== 0 && code !== 143 && signal !== "SIGTERM") fail(`after SIGTERM: exit ${code} ${signal}`);
  if (!/shutting down|stopp|exit/i.test(stderr)) console.error("npm-e2e: note: the hub logged no shutdown line");
  console.error(`npm-e2e: SIGTERM passed through: exit ${code ?? signal}`);
  clearTimeout(timer);
  process.exit(0);
})();

// hub-e2e.mjs: drives a sigil-hub binary with the official TypeScript SDK
// client (@modelcontextprotocol/sdk), the way a desktop client would, and
// checks the non-tool-call parts of MCP end to end through the hub: progress,
// sampling, elicitation, roots, resources and subscriptions, prompts,
// completions and ping.
//
// Usage: node hub-e2e.mjs HUB_BINARY [HUB_ARGS...]
//
// The hub must front @modelcontextprotocol/server-everything as upstream
// "ev" (so its tools are ev__*) and allow every ev tool. The hub gets this
// process's environment. Each check prints one JSON line on stdout:
//   {"check":"NAME","ok":true|false,"detail":"..."}
// Diagnostics (and the hub's stderr) go to stderr. The exit code is 0 only
// when every check passed. Used by cmd/sigil-hub/e2e_tssdk_test.go.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const PREFIX = "ev__";
const DEADLINE_MS = 30_000; // how long a poll waits for something to happen

const [hubBin, ...hubArgs] = process.argv.slice(2);
if (!hubBin) {
  process.stderr.write("usage: node hub-e2e.mjs HUB_BINARY [HUB_ARGS...]\n");
  process.exit(2);
}

let failed = 0;
function report(check, ok, detail) {
  if (!ok) failed++;
  process.stdout.write(JSON.stringify({ check, ok, detail: String(detail ?? "") }) + "\n");
}

// check runs fn; fn returns a detail string on success and throws on failure.
async function check(name, fn) {
  try {
    report(name, true, await fn());
  } catch (err) {
    report(name, false, err instanceof Error ? err.message : String(err));
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// poll calls fn until it returns a truthy value or DEADLINE_MS passes.
async function poll(what, fn) {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const text = (result) =>
  (result.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");

// ---- the client, with sampling, form elicitation and roots handlers ----

const client = new Client(
  { name: "sigil-hub-tssdk-e2e", version: "1.0.0" },
  { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } },
);

const seen = { sampling: [], elicitation: [], roots: 0, updated: [] };
let roots = [{ uri: "file:///sdk-client/root-a", name: "root-a" }];

client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
  seen.sampling.push(req.params);
  return {
    model: "sdk-test-model",
    role: "assistant",
    content: { type: "text", text: "sampled by the TypeScript SDK client" },
  };
});
client.setRequestHandler(ElicitRequestSchema, async (req) => {
  seen.elicitation.push(req.params);
  return { action: "accept", content: { name: "Ada Lovelace", check: true } };
});
client.setRequestHandler(ListRootsRequestSchema, async () => {
  seen.roots++;
  return { roots };
});
client.onerror = (err) => process.stderr.write(`sdk client error: ${err?.message ?? err}\n`);
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
  seen.updated.push(n.params.uri);
});

const transport = new StdioClientTransport({
  command: hubBin,
  args: hubArgs,
  env: { ...process.env },
  stderr: "pipe",
});
let hubStderr = "";

// wire is every message the hub sent, in arrival order, recorded before the
// SDK sees it (a tap on the transport's onmessage, which Client.connect sets).
const wire = [];
let sdkOnMessage;
function tap(msg, extra) {
  wire.push(msg);
  sdkOnMessage?.(msg, extra);
}
Object.defineProperty(transport, "onmessage", {
  configurable: true,
  get: () => (sdkOnMessage ? tap : undefined),
  set: (f) => {
    sdkOnMessage = f;
  },
});
transport.stderr?.on("data", (b) => {
  hubStderr += b.toString();
});

// A hung hub must not hang the test: the Go side also has a deadline.
const watchdog = setTimeout(() => {
  report("watchdog", false, "the checks did not finish within 240 s");
  process.stderr.write("hub stderr:\n" + hubStderr);
  process.exit(1);
}, 240_000);

await check("initialize", async () => {
  await client.connect(transport);
  const info = client.getServerVersion();
  const caps = client.getServerCapabilities() ?? {};
  assert(info?.name === "sigil-hub", `serverInfo.name = ${info?.name}`);
  assert(caps.resources?.subscribe === true, `resources.subscribe not declared: ${JSON.stringify(caps)}`);
  assert(caps.completions !== undefined, `completions not declared: ${JSON.stringify(caps)}`);
  const init = wire.find((m) => m.result?.protocolVersion !== undefined);
  return `${info.name} ${info.version}, protocol ${init?.result?.protocolVersion}`;
});

// ---- tools ----

const wantTools = [
  "echo",
  "trigger-long-running-operation",
  "trigger-sampling-request",
  "trigger-elicitation-request",
  "get-roots-list",
  "toggle-subscriber-updates",
].map((n) => PREFIX + n);

await check("tools/list namespaced", async () => {
  // server-everything registers its capability-dependent tools after its
  // initialize and says so with tools/list_changed: poll until they show.
  const names = await poll("the ev__ tools", async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    return wantTools.every((w) => names.includes(w)) ? names : null;
  });
  const bad = names.filter((n) => !n.startsWith(PREFIX));
  assert(bad.length === 0, `names without the ${PREFIX} prefix: ${bad.join(", ")}`);
  return `${names.length} tools, all ${PREFIX}*`;
});

await check("tools/call echo", async () => {
  const r = await client.callTool({ name: PREFIX + "echo", arguments: { message: "through the hub" } });
  assert(!r.isError && text(r).includes("through the hub"), `result ${JSON.stringify(r)}`);
  return text(r);
});

// STEPS progress notifications, STEP_S seconds apart (the upstream paces
// them). The SDK runs notification handlers in a microtask but responses at
// once, so a notification that arrives in the same read as the response is
// dropped by the SDK ("unknown token"): the last one usually is. Spacing them
// half a second apart keeps the earlier ones in reads of their own; the wire
// check below holds the hub to all of them, in order, before the response.
const STEPS = 3;
const STEP_S = 0.5;

await check("progress", async () => {
  const got = [];
  const from = wire.length;
  const r = await client.callTool(
    { name: PREFIX + "trigger-long-running-operation", arguments: { duration: STEPS * STEP_S, steps: STEPS } },
    undefined,
    { onprogress: (p) => got.push(p) },
  );
  assert(!r.isError && text(r).includes("Long running operation completed"), `result ${JSON.stringify(r)}`);
  assert(got.length >= 2, `onprogress ran ${got.length} times, want >= 2: ${JSON.stringify(got)}`);
  for (let i = 1; i < got.length; i++) {
    assert(got[i].progress > got[i - 1].progress, `progress not increasing: ${JSON.stringify(got)}`);
  }
  assert(got.every((p) => p.total === STEPS), `total != ${STEPS}: ${JSON.stringify(got)}`);

  // On the wire: every notification, with the client's own token, before
  // the response.
  const msgs = wire.slice(from);
  const respAt = msgs.findIndex((m) => m.id !== undefined && m.result?.content !== undefined);
  assert(respAt >= 0, "the tools/call response is not on the wire");
  const id = msgs[respAt].id;
  const before = msgs.slice(0, respAt).filter((m) => m.method === "notifications/progress");
  const after = msgs.slice(respAt).filter((m) => m.method === "notifications/progress");
  assert(before.length === STEPS, `${before.length} progress notifications before the response, want ${STEPS}`);
  assert(after.length === 0, `${after.length} progress notifications after the response`);
  assert(
    before.every((m) => m.params.progressToken === id),
    `progress tokens ${JSON.stringify(before.map((m) => m.params.progressToken))}, want the request id ${id}`,
  );
  return `onprogress ${got.length}x (${got.map((p) => `${p.progress}/${p.total}`).join(" ")}); wire ${before.length}x before the response`;
});

await check("sampling", async () => {
  const r = await client.callTool({
    name: PREFIX + "trigger-sampling-request",
    arguments: { prompt: "hello from the sdk", maxTokens: 10 },
  });
  assert(seen.sampling.length === 1, `sampling handler ran ${seen.sampling.length} times, want 1`);
  const asked = JSON.stringify(seen.sampling[0].messages);
  assert(asked.includes("hello from the sdk"), `sampling request messages ${asked}`);
  assert(!r.isError && text(r).includes("sampled by the TypeScript SDK client"), `result ${text(r)}`);
  assert(text(r).includes("sdk-test-model"), `result lacks the model: ${text(r)}`);
  return "the client's answer came back in the tool result";
});

await check("elicitation", async () => {
  const r = await client.callTool({ name: PREFIX + "trigger-elicitation-request", arguments: {} });
  assert(seen.elicitation.length === 1, `elicitation handler ran ${seen.elicitation.length} times, want 1`);
  const props = seen.elicitation[0].requestedSchema?.properties ?? {};
  assert("name" in props, `requestedSchema ${JSON.stringify(seen.elicitation[0].requestedSchema)}`);
  assert(!r.isError && text(r).includes("Name: Ada Lovelace"), `result ${text(r)}`);
  return "form elicitation answered with accept; the upstream saw the content";
});

await check("roots", async () => {
  const r = await client.callTool({ name: PREFIX + "get-roots-list", arguments: {} });
  assert(!r.isError && text(r).includes("file:///sdk-client/root-a"), `result ${text(r)}`);
  assert(seen.roots >= 1, "roots handler never ran");
  return `roots handler ran ${seen.roots} times`;
});

await check("roots list_changed", async () => {
  const before = seen.roots;
  roots = [{ uri: "file:///sdk-client/root-b", name: "root-b" }];
  await client.sendRootsListChanged();
  // server-everything answers roots/list_changed by asking roots/list again.
  await poll("roots/list after notifications/roots/list_changed", async () => seen.roots > before);
  const t = await poll("get-roots-list to show root-b", async () => {
    const r = await client.callTool({ name: PREFIX + "get-roots-list", arguments: {} });
    return text(r).includes("file:///sdk-client/root-b") ? text(r) : null;
  });
  assert(!t.includes("root-a"), `old root still listed: ${t}`);
  return "the upstream re-listed roots and sees the new ones";
});

// ---- resources ----

const textURI = "demo://resource/dynamic/text/1";

await check("resources/list", async () => {
  const { resources } = await client.listResources();
  const uris = resources.map((r) => r.uri);
  assert(uris.some((u) => u.startsWith("demo://resource/")), `resources ${JSON.stringify(uris)}`);
  const { resourceTemplates } = await client.listResourceTemplates();
  const tpls = resourceTemplates.map((t) => t.uriTemplate);
  assert(tpls.includes("demo://resource/dynamic/text/{resourceId}"), `templates ${JSON.stringify(tpls)}`);
  return `${uris.length} resources, ${tpls.length} templates`;
});

await check("resources/read", async () => {
  const { contents } = await client.readResource({ uri: textURI });
  assert(contents.length === 1 && contents[0].uri === textURI, `contents ${JSON.stringify(contents)}`);
  assert(String(contents[0].text).startsWith("Resource 1:"), `text ${contents[0].text}`);
  const { resources } = await client.listResources();
  const staticURI = resources.map((r) => r.uri).find((u) => u.startsWith("demo://resource/static/"));
  assert(staticURI, "no static demo:// resource listed");
  const st = await client.readResource({ uri: staticURI });
  assert(st.contents.length >= 1 && st.contents[0].uri === staticURI, `contents ${JSON.stringify(st.contents)}`);
  return `read ${textURI} and ${staticURI}`;
});

await check("resources/subscribe updated", async () => {
  await client.subscribeResource({ uri: textURI });
  // server-everything sends updates only after toggle-subscriber-updates:
  // one at once, then one every 5 s.
  const r = await client.callTool({ name: PREFIX + "toggle-subscriber-updates", arguments: {} });
  assert(!r.isError && text(r).includes("Started"), `toggle: ${text(r)}`);
  try {
    await poll(`notifications/resources/updated for ${textURI}`, async () => seen.updated.includes(textURI));
  } finally {
    const off = await client.callTool({ name: PREFIX + "toggle-subscriber-updates", arguments: {} });
    assert(text(off).includes("Stopped"), `toggle off: ${text(off)}`);
  }
  const other = seen.updated.filter((u) => u !== textURI);
  assert(other.length === 0, `updates for URIs never subscribed: ${other.join(", ")}`);
  return `${seen.updated.length} update(s) for ${textURI}`;
});

await check("resources/unsubscribe", async () => {
  const r = await client.unsubscribeResource({ uri: textURI });
  assert(r && typeof r === "object", `result ${JSON.stringify(r)}`);
  return "unsubscribed";
});

// ---- prompts and completions ----

await check("prompts/list namespaced", async () => {
  const { prompts } = await client.listPrompts();
  const names = prompts.map((p) => p.name);
  for (const want of ["simple-prompt", "completable-prompt"]) {
    assert(names.includes(PREFIX + want), `prompts ${JSON.stringify(names)}, missing ${PREFIX + want}`);
  }
  const bad = names.filter((n) => !n.startsWith(PREFIX));
  assert(bad.length === 0, `names without the ${PREFIX} prefix: ${bad.join(", ")}`);
  return names.join(", ");
});

await check("prompts/get", async () => {
  const r = await client.getPrompt({ name: PREFIX + "simple-prompt" });
  const t = r.messages?.[0]?.content?.text ?? "";
  assert(t.includes("simple prompt"), `messages ${JSON.stringify(r.messages)}`);
  const c = await client.getPrompt({
    name: PREFIX + "completable-prompt",
    arguments: { department: "Engineering", name: "Alice" },
  });
  const ct = c.messages?.[0]?.content?.text ?? "";
  assert(ct.includes("promote Alice to the head of the Engineering team"), `messages ${JSON.stringify(c.messages)}`);
  return "simple-prompt and completable-prompt (with arguments)";
});

await check("completion/complete prompt", async () => {
  const ref = { type: "ref/prompt", name: PREFIX + "completable-prompt" };
  const a = await client.complete({ ref, argument: { name: "department", value: "E" } });
  assert(JSON.stringify(a.completion.values) === '["Engineering"]', `department "E": ${JSON.stringify(a.completion)}`);
  const b = await client.complete({
    ref,
    argument: { name: "name", value: "" },
    context: { arguments: { department: "Sales" } },
  });
  assert(JSON.stringify(b.completion.values) === '["David","Eve","Frank"]', `name in Sales: ${JSON.stringify(b.completion)}`);
  return "department E -> Engineering; name in Sales (context) -> David, Eve, Frank";
});

await check("completion/complete resource template", async () => {
  const r = await client.complete({
    ref: { type: "ref/resource", uri: "demo://resource/dynamic/text/{resourceId}" },
    argument: { name: "resourceId", value: "7" },
  });
  assert(JSON.stringify(r.completion.values) === '["7"]', `completion ${JSON.stringify(r.completion)}`);
  return "resourceId 7 -> 7";
});

await check("ping", async () => {
  const r = await client.ping();
  assert(r && typeof r === "object", `ping result ${JSON.stringify(r)}`);
  return "pong";
});

clearTimeout(watchdog);
await client.close().catch(() => {});
if (failed > 0) {
  process.stderr.write(`${failed} check(s) failed\nhub stderr:\n${hubStderr}`);
}
process.exit(failed > 0 ? 1 : 0);

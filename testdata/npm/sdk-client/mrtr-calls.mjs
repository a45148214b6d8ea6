// mrtr-calls.mjs: an official TypeScript SDK client calls tools that ask it
// for input in the middle of the call, for cmd/sigil-hub/clients_mrtr_test.go.
// Its elicitation handler accepts every form with the content the spec gives,
// so the tool's result shows whether that answer reached the server.
//
//   sdk "v2": @modelcontextprotocol/client (era "2026-07-28": versionNegotiation
//             {mode: 'auto'}, input_required fulfilled by the SDK with the same
//             handler; era "2025-11-25": the default 'legacy' mode, where the
//             server asks with elicitation/create requests)
//   sdk "v1": @modelcontextprotocol/sdk (2025 era only: elicitation/create)
//
// The spec (argv[2], JSON):
//   {"sdk", "era", "endpoint": {"command", "args", "env", "cwd"} | {"url"},
//    "calls": [{"tool", "arguments", "answer": {...}}]}
// Output, one JSON line on stdout:
//   {"version", "era", "elicitations", "results": {tool: {text, isError}}}   or   {"error"}
// Diagnostics (and a stdio server's stderr) go to stderr.

const spec = JSON.parse(process.argv[2] ?? "null");
if (!spec) {
  process.stderr.write("usage: node mrtr-calls.mjs SPEC_JSON\n");
  process.exit(2);
}
const modern = spec.era === "2026-07-28";
if (spec.sdk === "v1" && modern) {
  process.stderr.write("the v1 SDK speaks only the 2025 era\n");
  process.exit(2);
}

const watchdog = setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: "the calls did not finish within 150 s" }) + "\n");
  process.exit(1);
}, 150_000);

// The answer the handler gives: the one of the call in flight.
let answer;
let elicitations = 0;
function onElicit(request) {
  elicitations++;
  process.stderr.write(`elicitation: ${JSON.stringify(request.params?.message)}\n`);
  return { action: "accept", content: answer };
}

const ep = spec.endpoint;
const stdioParams = () => ({ command: ep.command, args: ep.args, env: ep.env, cwd: ep.cwd, stderr: "inherit" });
let client;
let version = () => undefined;
let era = () => undefined;

if (spec.sdk === "v2") {
  const { Client, StreamableHTTPClientTransport } = await import("@modelcontextprotocol/client");
  const { StdioClientTransport } = await import("@modelcontextprotocol/client/stdio");
  client = new Client(
    { name: "tssdk-v2-mrtr", version: "2.4.0" },
    { capabilities: { elicitation: { form: {} } }, ...(modern ? { versionNegotiation: { mode: "auto" } } : {}) },
  );
  client.setRequestHandler("elicitation/create", onElicit);
  const transport = ep.url ? new StreamableHTTPClientTransport(new URL(ep.url)) : new StdioClientTransport(stdioParams());
  client.onerror = (err) => process.stderr.write(`client error: ${err?.message ?? err}\n`);
  try {
    await client.connect(transport);
  } catch (err) {
    fail(err);
  }
  version = () => client.getNegotiatedProtocolVersion();
  era = () => client.getProtocolEra();
} else {
  const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
  const { StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js");
  const { StreamableHTTPClientTransport } = await import("@modelcontextprotocol/sdk/client/streamableHttp.js");
  const { ElicitRequestSchema } = await import("@modelcontextprotocol/sdk/types.js");
  client = new Client({ name: "tssdk-v1-mrtr", version: "1.32.2" }, { capabilities: { elicitation: { form: {} } } });
  client.setRequestHandler(ElicitRequestSchema, onElicit);
  const transport = ep.url ? new StreamableHTTPClientTransport(new URL(ep.url)) : new StdioClientTransport(stdioParams());
  // The v1 client keeps the negotiated version to itself: read it off the
  // initialize result on its way in (as v1-view.mjs does).
  let negotiated;
  let sdkOnMessage;
  Object.defineProperty(transport, "onmessage", {
    configurable: true,
    get: () =>
      sdkOnMessage &&
      ((msg, extra) => {
        if (negotiated === undefined && typeof msg?.result?.protocolVersion === "string") negotiated = msg.result.protocolVersion;
        sdkOnMessage(msg, extra);
      }),
    set: (f) => {
      sdkOnMessage = f;
    },
  });
  client.onerror = (err) => process.stderr.write(`client error: ${err?.message ?? err}\n`);
  try {
    await client.connect(transport);
  } catch (err) {
    fail(err);
  }
  version = () => negotiated;
}

function fail(err) {
  const msg = err instanceof Error ? `${err.message}${err.code !== undefined ? ` (code ${err.code})` : ""}` : String(err);
  process.stdout.write(JSON.stringify({ error: msg }) + "\n");
  process.exit(1);
}

const results = {};
try {
  for (const call of spec.calls) {
    answer = call.answer;
    // A person approves the held call meanwhile: allow the SDK's default
    // 60 s per round, no more.
    const r = await client.callTool({ name: call.tool, arguments: call.arguments ?? {} });
    const text = (r.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
    results[call.tool] = { text, isError: r.isError === true };
  }
} catch (err) {
  fail(err);
}
process.stdout.write(JSON.stringify({ version: version(), era: era(), elicitations, results }) + "\n");
clearTimeout(watchdog);
await client.close().catch(() => {});
process.exit(0);

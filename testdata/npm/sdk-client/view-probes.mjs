// view-probes.mjs: what one TypeScript SDK client sees of one MCP server,
// for cmd/sigil-hub/clients_tssdk_v2_test.go (used by v2-view.mjs and
// v1-view.mjs, one per SDK major version: both clients have the same method
// names for what is probed here).
//
// The spec (argv[2], JSON) comes from the Go test:
//   {"era": "2026-07-28" | "2025-11-25",
//    "endpoints": [{"label", "prefix", "command", "args", "env", "cwd"} | {"label", "prefix", "url"}],
//    "probes": {"toolCalls": [...], "prompts": [{"name", "args"}], "reads": [...],
//               "trigger": "...", "dynamicTool": "..."}}
// For each endpoint, in order, one JSON line on stdout:
//   {"label", "version", "era", "probes": {name: result}}   or   {"label", "error"}
// The probe names and what they hold are the Go test's (collectView in
// cmd/sigil-hub/clients_modern_test.go). Diagnostics go to stderr.

export function readSpec() {
  const raw = process.argv[2];
  if (!raw) {
    process.stderr.write("usage: node " + process.argv[1] + " SPEC_JSON\n");
    process.exit(2);
  }
  return JSON.parse(raw);
}

const CHANGE_DEADLINE_MS = 10_000;

// collect runs every probe through conn, whose client is connected:
//   conn.client        the SDK Client
//   conn.changes       a counter object {n} bumped on each tools/list_changed
//   conn.version()     the negotiated protocol version
//   conn.era()         the SDK's own era verdict, if it has one
export async function collect(conn, prefix, probes) {
  const c = conn.client;
  const out = {};
  out["tools/list"] = await c.listTools();
  for (const name of probes.toolCalls) {
    out["tools/call " + name] = await c.callTool({ name: prefix + name, arguments: {} });
  }
  out["prompts/list"] = await c.listPrompts();
  for (const p of probes.prompts) {
    const params = { name: prefix + p.name };
    if (p.args) params.arguments = p.args;
    out["prompts/get " + p.name] = await c.getPrompt(params);
  }
  out["resources/list"] = await c.listResources();
  out["resources/templates/list"] = await c.listResourceTemplates();
  for (const uri of probes.reads) {
    out["resources/read " + uri] = await c.readResource({ uri });
  }

  // The list change (as collectView does it): changes heard before the
  // trigger are dropped; after it, a notification must be followed by a
  // tools/list with the dynamic tool, at the latest after a further one.
  const before = conn.changes.n;
  if (before > 0) process.stderr.write(`${before} tools/list_changed before the trigger\n`);
  out["tools/call " + probes.trigger] = await c.callTool({ name: prefix + probes.trigger, arguments: {} });
  const end = Date.now() + CHANGE_DEADLINE_MS;
  let seen = before;
  for (;;) {
    while (conn.changes.n === seen) {
      if (Date.now() > end) {
        throw new Error(
          `no notifications/tools/list_changed followed by a tools/list with ${probes.dynamicTool} within ` +
            `${CHANGE_DEADLINE_MS / 1000} s of calling ${prefix + probes.trigger} (${seen - before} heard)`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    seen = conn.changes.n;
    const list = await c.listTools();
    if (list.tools.some((t) => t.name === prefix + probes.dynamicTool)) {
      out["notifications/tools/list_changed"] = true;
      out["tools/list after list_changed"] = list;
      break;
    }
    process.stderr.write(`tools/list after notification ${seen - before} lacks ${prefix + probes.dynamicTool}\n`);
  }
  return out;
}

// run connects to each endpoint with dial(endpoint) → conn, collects, closes
// and prints one line per endpoint. A watchdog bounds the whole run.
export async function run(spec, dial) {
  const watchdog = setTimeout(() => {
    process.stdout.write(JSON.stringify({ label: "watchdog", error: "the probes did not finish within 150 s" }) + "\n");
    process.exit(1);
  }, 150_000);
  let failed = 0;
  for (const ep of spec.endpoints) {
    let conn;
    try {
      conn = await dial(ep);
      const line = { label: ep.label, version: conn.version(), era: conn.era?.(), probes: await collect(conn, ep.prefix ?? "", spec.probes) };
      process.stdout.write(JSON.stringify(line) + "\n");
    } catch (err) {
      failed++;
      const msg = err instanceof Error ? `${err.message}${err.code !== undefined ? ` (code ${err.code})` : ""}` : String(err);
      process.stdout.write(JSON.stringify({ label: ep.label, error: msg }) + "\n");
    } finally {
      await conn?.close().catch(() => {});
    }
  }
  clearTimeout(watchdog);
  process.exit(failed > 0 ? 1 : 0);
}

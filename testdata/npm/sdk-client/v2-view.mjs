// v2-view.mjs: the official TypeScript SDK v2 client (@modelcontextprotocol/client,
// pinned in testdata/npm) probes each endpoint of the spec (see view-probes.mjs)
// and prints what it saw, for cmd/sigil-hub/clients_tssdk_v2_test.go.
//
// era "2026-07-28": versionNegotiation {mode: 'auto'} (server/discover first,
// falling back to initialize only without modern evidence: the Go test fails
// a fallback, since it checks the negotiated version), list changes through
// subscriptions/listen. era "2025-11-25": the SDK's default 'legacy' mode
// (initialize), list changes as unsolicited notifications.
//
// Usage: node v2-view.mjs SPEC_JSON

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { readSpec, run } from "./view-probes.mjs";

const spec = readSpec();
const modern = spec.era === "2026-07-28";

await run(spec, async (ep) => {
  const client = new Client(
    { name: "tssdk-v2-probe", version: "2.4.0" },
    modern ? { versionNegotiation: { mode: "auto" } } : {},
  );
  const changes = { n: 0 };
  client.setNotificationHandler("notifications/tools/list_changed", () => {
    changes.n++;
  });
  client.onerror = (err) => process.stderr.write(`${ep.label}: client error: ${err?.message ?? err}\n`);
  const transport = ep.url
    ? new StreamableHTTPClientTransport(new URL(ep.url))
    : new StdioClientTransport({ command: ep.command, args: ep.args, env: ep.env, cwd: ep.cwd, stderr: "inherit" });
  await client.connect(transport);
  let sub;
  if (client.getProtocolEra() === "modern") {
    sub = await client.listen({ toolsListChanged: true });
    if (!sub.honoredFilter?.toolsListChanged) {
      throw new Error(`subscriptions/listen did not honour toolsListChanged: ${JSON.stringify(sub.honoredFilter)}`);
    }
  }
  return {
    client,
    changes,
    version: () => client.getNegotiatedProtocolVersion(),
    era: () => client.getProtocolEra(),
    close: async () => {
      await sub?.close();
      await client.close();
    },
  };
});

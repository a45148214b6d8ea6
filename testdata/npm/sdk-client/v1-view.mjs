// v1-view.mjs: the official TypeScript SDK v1 client (@modelcontextprotocol/sdk,
// pinned in testdata/npm), which speaks only the 2025 era, probes each endpoint
// of the spec (see view-probes.mjs) and prints what it saw, for
// cmd/sigil-hub/clients_tssdk_v2_test.go. List changes arrive as unsolicited
// notifications (on the session's GET stream over HTTP).
//
// Usage: node v1-view.mjs SPEC_JSON

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { readSpec, run } from "./view-probes.mjs";

const spec = readSpec();
if (spec.era !== "2025-11-25") {
  process.stderr.write(`the v1 SDK speaks only the 2025 era, not ${spec.era}\n`);
  process.exit(2);
}

await run(spec, async (ep) => {
  const client = new Client({ name: "tssdk-v1-probe", version: "1.32.2" });
  const changes = { n: 0 };
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    changes.n++;
  });
  client.onerror = (err) => process.stderr.write(`${ep.label}: client error: ${err?.message ?? err}\n`);
  const transport = ep.url
    ? new StreamableHTTPClientTransport(new URL(ep.url))
    : new StdioClientTransport({ command: ep.command, args: ep.args, env: ep.env, cwd: ep.cwd, stderr: "inherit" });
  // The v1 client keeps the negotiated version to itself: read it off the
  // initialize result on its way in (a tap on the transport's onmessage,
  // which Client.connect sets, as hub-e2e.mjs does).
  let version;
  let sdkOnMessage;
  Object.defineProperty(transport, "onmessage", {
    configurable: true,
    get: () =>
      sdkOnMessage &&
      ((msg, extra) => {
        if (version === undefined && typeof msg?.result?.protocolVersion === "string") version = msg.result.protocolVersion;
        sdkOnMessage(msg, extra);
      }),
    set: (f) => {
      sdkOnMessage = f;
    },
  });
  await client.connect(transport);
  return {
    client,
    changes,
    version: () => version,
    close: () => client.close(),
  };
});

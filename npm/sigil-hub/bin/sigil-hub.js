#!/usr/bin/env node
// The sigil-hub launcher: runs the Go binary of this platform's package
// (sigil-hub-<os>-<arch>, an optional dependency) with the same arguments,
// stdin/stdout/stderr passed through untouched (stdout is the MCP channel),
// signals forwarded, and its exit status as ours.
"use strict";

const { spawn } = require("node:child_process");
const path = require("node:path");

const platforms = {
  "linux-x64": "sigil-hub-linux-x64",
  "linux-arm64": "sigil-hub-linux-arm64",
  "darwin-x64": "sigil-hub-darwin-x64",
  "darwin-arm64": "sigil-hub-darwin-arm64",
  "win32-x64": "sigil-hub-windows-x64",
};

function binaryPath() {
  const key = `${process.platform}-${process.arch}`;
  const pkg = platforms[key];
  if (!pkg) {
    throw new Error(`sigil-hub has no binary for ${key}; supported: ${Object.keys(platforms).join(", ")}. ` +
      "Build one with: go install github.com/sigilcore/sigil-hub/cmd/sigil-hub@latest");
  }
  const exe = process.platform === "win32" ? "sigil-hub.exe" : "sigil-hub";
  try {
    return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), "bin", exe);
  } catch {
    throw new Error(`the package ${pkg} (sigil-hub's binary for ${key}) is not installed: ` +
      "reinstall sigil-hub without --no-optional / --omit=optional");
  }
}

let bin;
try {
  bin = binaryPath();
} catch (err) {
  process.stderr.write(`sigil-hub: ${err.message}\n`);
  process.exit(1);
}

const child = spawn(bin, process.argv.slice(2), { stdio: "inherit", windowsHide: true });
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(sig);
    }
  });
}
child.on("error", (err) => {
  process.stderr.write(`sigil-hub: cannot start ${bin}: ${err.message}\n`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal, so a parent sees what the binary saw.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});

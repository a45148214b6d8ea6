// Command clock is a tiny MCP server over stdio, used by the sigil-hub
// examples as a second upstream: tool now returns the current time, tool
// sleep waits a given number of milliseconds (handy to watch cancellation
// and timeouts travel through the hub). It logs to stderr only.
//
// It imports only the standard library and mcp-go, nothing from sigil-hub.
package main

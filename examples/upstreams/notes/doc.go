// Command notes is a small MCP server over stdio, used by the sigil-hub
// examples as a realistic upstream: an in-memory note store with four tools
// (list_notes, read_note, write_note, delete_note), one prompt (summarize)
// and one resource template (notes://{name}).
//
// It is seeded with a few notes, one of them named ".env" holding a fake
// secret, so that a policy rule can be seen denying access to it. Notes
// whose names start with a dot are "hidden": they are listed and can be
// read through read_note (where the hub's policy applies), but the prompt
// and the resource refuse them, because the hub authorizes tools/call only
// (resources/read and prompts/get are forwarded without a policy check).
//
// Nothing is persisted: every start begins from the seed. The server logs
// to stderr only; stdout carries the MCP protocol.
//
// It imports only the standard library and mcp-go, nothing from sigil-hub:
// it stands for any third-party MCP server.
package main

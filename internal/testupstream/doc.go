// Package testupstream is a configurable fake MCP server used by the tests of
// other packages, started as a real child process (or served in process over
// loopback HTTP).
//
// Tests use the re-exec trick: their TestMain calls Main when the environment
// variable SIGIL_HUB_TEST_UPSTREAM is "1", and an upstream spec runs the test
// binary itself (os.Executable()) with that variable set. Main chooses its
// behaviour from environment variables; being a process entry point it is the
// one place outside cmd/ that reads the environment:
//
//	SIGIL_HUB_TEST_UPSTREAM=1     the marker TestMain checks (EnvMarker)
//	TESTUPSTREAM_NAME=<name>      serverInfo.name ("testupstream" if unset)
//	TESTUPSTREAM_TOOLS=a,b        extra plain tools; each answers "ok:<name>"
//	TESTUPSTREAM_LOG=<file>       append every raw JSON-RPC line received (stdin
//	                              lines, or HTTP POST bodies) to the file, one
//	                              write per line; tool events such as a
//	                              cancelled "slow" call are appended as
//	                              {"testupstream":"<event>",...} lines
//	TESTUPSTREAM_FAIL_START=<msg> print msg to stderr and exit 1 at once
//	TESTUPSTREAM_IGNORE_TERM=1    ignore SIGTERM and stdin EOF (only SIGKILL stops it)
//	TESTUPSTREAM_GRANDCHILD=1     spawn a grandchild (the same binary, sleeping
//	                              forever) that inherits stdout and stderr
//	TESTUPSTREAM_STDERR_FLOOD=<n> write n bytes (default 1 MiB if not a number)
//	                              of stderr lines before serving
//	TESTUPSTREAM_PAGE_SIZE=<n>    page list results n items at a time
//	TESTUPSTREAM_GARBAGE=<n>      write n non-JSON-RPC lines (banners, a
//	                              truncated message, binary junk) to stdout
//	                              before serving (stdio mode)
//	TESTUPSTREAM_MISBEHAVE=1      also serve the misbehaving tools (below)
//	TESTUPSTREAM_HTTP=<addr>      serve over HTTP instead of stdio (e.g.
//	                              127.0.0.1:0): Streamable HTTP at /mcp, legacy
//	                              SSE at /sse; the first stdout line is
//	                              "LISTENING <url of /mcp>"; stops at stdin EOF
//
// Tools: echo (answers its raw arguments bytes as a text block), slow {ms},
// barrier {key, n} (blocks until n calls with the same key are in flight: proves
// calls run in parallel without timing), crash (exits mid-call), progress {n}
// (sends n notifications/progress with the request's progressToken), add_tool
// {name, count} (emits one tools/list_changed per added tool), remove_tool
// {name}, pid (its pid and its grandchild's), env (its environment), roots
// (asks the client roots/list and answers the roots as JSON), rich (a
// tool with a rich raw schema: see RichInputSchema). Prompt greet {name};
// resource test://static; template test://items/{id}.
//
// Misbehaving tools, served only with TESTUPSTREAM_MISBEHAVE=1
// (Config.Misbehave) so that other tests' tool lists stay as they are
// (docs/faults.md cases 47–61; the raw-output ones misbehave in stdio mode only): inject
// {n} (progress for the guessed tokens sigil-hub-1 … sigil-hub-n and a log
// message "injected log", then an answer), hang (never answers, not even after notifications/cancelled;
// logs {"testupstream":"cancelled","tool":"hang"} when mcp-go cancels it),
// garbage {n} (n non-JSON lines on stdout, then a normal answer), huge {mb,
// answer} (one line of mb MiB, default 100, then an answer unless answer is
// false), notify_flood {n, kind, rate, seconds} (n notifications of kind
// message, progress (a token nobody sent), mixed (both, alternating) or
// list_changed, then an answer; with rate, rate per second for seconds,
// and the answer says the rate achieved), stderr_flood {mb}
// (mb MiB of stderr without a newline), kill_self (SIGKILLs itself
// mid-call), rug_pull (changes the description and schema of the tool
// "victim" from RugPullV1 to RugPullV2 and sends tools/list_changed), sample
// {kind} (asks the client sampling/createMessage or, with kind
// "elicitation", elicitation/create, and answers "refused: <error>" or
// "answered"), bad_ids (answered by the stdin reader itself: responses for
// ids nobody sent, then "first", then a duplicate "second") and both_fields
// (a response with both result and error).
//
// This package may import mcp-go's server and mcp packages and the standard
// library; it must not import any sigil-hub package. Production code must not
// import it.
package testupstream

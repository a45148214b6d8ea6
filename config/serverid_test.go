package config

import (
	"strings"
	"testing"
)

func TestDeriveServerID(t *testing.T) {
	tests := []struct {
		name    string
		command string
		args    string // space-separated
		want    string
	}{
		{"npx plain", "npx", "server-everything", "server-everything"},
		{"npx -y", "npx", "-y @modelcontextprotocol/server-filesystem /tmp", "@modelcontextprotocol/server-filesystem"},
		{"npx --yes version", "npx", "--yes mcp-remote@0.1.2 https://x", "mcp-remote"},
		{"npx scoped version", "npx", "-y @scope/pkg@1.2 --flag", "@scope/pkg"},
		{"npx scoped latest", "npx", "@scope/pkg@latest", "@scope/pkg"},
		{"npx other flags", "npx", "-q --no-install pkg", "pkg"},
		{"npx value flag", "npx", "--registry https://r.example -y pkg@2", "pkg"},
		{"npx registry=", "npx", "--registry=https://r.example pkg", "pkg"},
		{"npx --package", "npx", "--package @a/b@3 -- b-cli", "@a/b"},
		{"npx -p", "npx", "-p pkg@1 cli", "pkg"},
		{"npx --", "npx", "-y -- pkg@1", "pkg"},
		{"npx github spec", "npx", "github:owner/repo", "github:owner/repo"},
		{"npx path", "/usr/local/bin/npx", "-y pkg", "pkg"},
		{"npx windows", `C:\Program Files\nodejs\npx.cmd`, "-y pkg", "pkg"},
		{"npx no package", "npx", "-y", "npx"},
		{"bunx", "bunx", "--bun @s/p@1.0.0", "@s/p"},
		{"pnpm dlx", "pnpm", "dlx @s/p@1", "@s/p"},
		{"pnpm dlx flags", "pnpm", "--silent dlx --package=x@1 y", "x"},
		{"pnpm not dlx", "pnpm", "run server", "pnpm"},
		{"uvx", "uvx", "mcp-server-fetch", "mcp-server-fetch"},
		{"uvx pinned", "uvx", "mcp-server-git==0.6.2 --repository .", "mcp-server-git"},
		{"uvx at version", "uvx", "mcp-server-time@latest", "mcp-server-time"},
		{"uvx extras", "uvx", "pkg[cli]>=1", "pkg"},
		{"uvx python flag", "uvx", "--python 3.12 pkg", "pkg"},
		{"uvx --from", "uvx", "--from awslabs.core-mcp-server@latest awslabs.core-mcp-server", "awslabs.core-mcp-server"},
		{"uvx git", "uvx", "--from git+https://github.com/o/r mcp-x", "mcp-x"},
		{"uvx --from, tool differs", "uvx", "--from pkg==1.0 pkg-cli --flag", "pkg-cli"},
		{"uvx --from=, tool", "uvx", "--from=git+https://h/o/r@main tool@1", "tool"},
		{"pipx run", "pipx", "run mcp-server-fetch", "mcp-server-fetch"},
		{"pipx run --spec", "pipx", "run --spec pkg==1.0 cli", "pkg"},
		{"pipx run flags", "pipx", "run --python python3.12 pkg", "pkg"},
		{"pipx not run", "pipx", "install pkg", "pipx"},
		{"docker run", "docker", "run -i --rm mcp/fetch", "mcp/fetch"},
		{"docker tag", "docker", "run -i --rm mcp/fetch:latest", "mcp/fetch"},
		{"docker env values", "docker", "run -i --rm -e GITHUB_TOKEN -e X=Y ghcr.io/github/github-mcp-server", "ghcr.io/github/github-mcp-server"},
		{"docker value flags", "docker", "run --name n -v a:b --network host -p 8080:80 -w /x img:1", "img"},
		{"docker = flags", "docker", "run --name=n --env=A=B img", "img"},
		{"docker clustered", "docker", "run -it -eA=B img", "img"},
		{"docker cluster value", "docker", "run -ie A=B img", "img"},
		{"docker digest", "docker", "run img@sha256:abcd", "img"},
		{"docker registry port", "docker", "run localhost:5000/team/img:2", "localhost:5000/team/img"},
		{"docker global flags", "docker", "--context remote run -i img:3 arg", "img"},
		{"docker container run", "docker", "container run --rm img", "img"},
		{"docker not run", "docker", "compose up", "docker"},
		{"docker.exe", `C:\bin\docker.exe`, "run img", "img"},
		{"plain executable", "/opt/bin/my-server", "--port 3", "my-server"},
		{"exe", `C:\tools\server.EXE`, "", "server"},
		// Interpreters: the script, module or package, never the interpreter.
		{"node script", "node", "/srv/weather.js", "weather"},
		{"node generic entry", "node", "/home/me/mcp/weather/build/index.js --port 3", "weather"},
		{"node relative entry", "node", "path/index.js", "path"},
		{"node module in node_modules", "node", "node_modules/@scope/pkg/dist/index.js", "@scope/pkg"},
		{"node flags", "node", "--require ./hook.js --enable-source-maps ./srv/notes/server.mjs", "notes"},
		{"node windows", `C:\Program Files\nodejs\node.exe`, `C:\mcp\files\dist\index.js`, "files"},
		{"node eval", "node", "-e console.log(1)", "node"},
		{"node no script", "node", "", "node"},
		{"python -m", "python3", "-m mcp_server_fetch", "mcp_server_fetch"},
		{"python -m attached", "python", "-u -mmcp_server.git --repo .", "mcp_server.git"},
		{"python script", "python3", "/opt/tools/weather.py", "weather"},
		{"python generic script", "python3.12", "-u ./calendar/main.py", "calendar"},
		{"python -c", "python3", "-c print(1)", "python3"},
		{"py launcher", "py", "-m pkg", "pkg"},
		{"deno npm", "deno", "run -A npm:@scope/mcp@1.2 --x", "@scope/mcp"},
		{"deno jsr", "deno", "run --allow-net jsr:@std/server@1", "@std/server"},
		{"deno script", "deno", "run --config deno.json ./crm/mod.ts", "crm"},
		{"deno url", "deno", "run https://deno.land/x/mcp@1/server.ts?x=1", "https://deno.land/x/mcp@1/server.ts"},
		{"bun run", "bun", "run ./inbox/src/index.ts", "inbox"},
		{"bun script", "bun", "--cwd /x tracker.ts", "tracker"},
		{"pythonista is not python", "pythonista", "x.py", "pythonista"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := strings.Fields(tt.args)
			if got := DeriveServerID(tt.command, args); got != tt.want {
				t.Errorf("DeriveServerID(%q, %q) = %q; want %q", tt.command, args, got, tt.want)
			}
		})
	}
}

func TestDeriveServerIDFromURL(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "https://mcp.linear.app/mcp", want: "https://mcp.linear.app/mcp"},
		{in: "HTTPS://MCP.Example.COM:8443/A/b/", want: "https://mcp.example.com:8443/A/b/"},
		{in: "https://user:secret@h.example/p?token=x#frag", want: "https://h.example/p"},
		{in: "http://127.0.0.1:3000", want: "http://127.0.0.1:3000"},
		{in: "http://[::1]:8080/sse", want: "http://[::1]:8080/sse"},
		{in: "https://h.example/a%20b", want: "https://h.example/a%20b"},
		{in: "ftp://h.example/x", wantErr: true},
		{in: "/relative", wantErr: true},
		{in: "https://", wantErr: true},
		{in: "https:opaque", wantErr: true},
		{in: "https://h\x7f/", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := DeriveServerIDFromURL(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DeriveServerIDFromURL(%q) = %q; want an error", tt.in, got)
				}
				if strings.Contains(err.Error(), tt.in) {
					t.Errorf("error echoes the URL: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("DeriveServerIDFromURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestServerIDProblems(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want []string // substrings, one per problem, in order
	}{
		{"github", nil},
		{"@modelcontextprotocol/server-github", nil},
		{"my-server_2", nil},
		{"https://mcp.example.com/mcp", []string{"'.'"}},
		{"a,b", []string{"','"}},
		{"srv*", []string{"'*'"}},
		{"a*b.c", []string{"'*'", "'.'"}},
		{" padded", []string{"white space"}},
		{`"quoted"`, []string{"quotes"}},
		{"line\nbreak", []string{"control character"}},
		{"x]y", []string{"']'"}},
		{"x<!--y", []string{"HTML comment"}},
	} {
		got := ServerIDProblems(tc.id)
		if len(got) != len(tc.want) {
			t.Errorf("ServerIDProblems(%q) = %q, want %d problems", tc.id, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("ServerIDProblems(%q)[%d] = %q, want it to mention %s", tc.id, i, got[i], w)
			}
		}
	}
}

package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var cfgUpdate = flag.Bool("update", false, "rewrite the want section of config/testdata/config/*.txtar")

// cfgTxtarFile is one "-- name --" section of a txtar archive.
type cfgTxtarFile struct {
	Name string
	Data string
}

// cfgParseTxtar parses the txtar format (golang.org/x/tools/txtar): a
// free-text comment, then sections introduced by "-- name --" lines.
func cfgParseTxtar(data string) (comment string, files []cfgTxtarFile) {
	lines := strings.SplitAfter(data, "\n")
	cur := -1
	var b strings.Builder
	flush := func() {
		if cur < 0 {
			comment = b.String()
		} else {
			files[cur].Data = b.String()
		}
		b.Reset()
	}
	for _, l := range lines {
		t := strings.TrimSuffix(l, "\n")
		if strings.HasPrefix(t, "-- ") && strings.HasSuffix(t, " --") && len(t) > 6 {
			flush()
			files = append(files, cfgTxtarFile{Name: strings.TrimSpace(t[3 : len(t)-3])})
			cur = len(files) - 1
			continue
		}
		b.WriteString(l)
	}
	flush()
	return comment, files
}

func cfgFormatTxtar(comment string, files []cfgTxtarFile) string {
	var b strings.Builder
	b.WriteString(comment)
	for _, f := range files {
		fmt.Fprintf(&b, "-- %s --\n", f.Name)
		b.WriteString(f.Data)
		if f.Data != "" && !strings.HasSuffix(f.Data, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// cfgEnv turns "NAME=value" lines into a getenv.
func cfgEnv(text string) func(string) string {
	m := map[string]string{}
	for l := range strings.SplitSeq(text, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}

// cfgDump renders a parse result for golden comparison.
func cfgDump(cfg Config, err error) string {
	if err != nil {
		return "error:\n" + err.Error() + "\n"
	}
	type dump struct {
		Config
		PendingTimeout string
		StartupTimeout string
	}
	b, mErr := json.MarshalIndent(dump{cfg, cfg.PendingTimeout.String(), cfg.StartupTimeout.String()}, "", "  ")
	if mErr != nil {
		return "marshal: " + mErr.Error()
	}
	return string(b) + "\n"
}

// cfgDiff is a line diff, "" when equal.
func cfgDiff(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		switch {
		case i >= len(w):
			fmt.Fprintf(&b, "+ %s\n", g[i])
		case i >= len(g):
			fmt.Fprintf(&b, "- %s\n", w[i])
		case w[i] != g[i]:
			fmt.Fprintf(&b, "- %s\n+ %s\n", w[i], g[i])
		}
	}
	return b.String()
}

// The config folder used by every golden case; relative cwd and policy
// paths resolve against it.
const cfgTestDir = "/etc/sigil"

func TestParseConfigGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "config", "*.txtar"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, p := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(p), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			comment, files := cfgParseTxtar(string(data))
			if strings.TrimSpace(comment) == "" {
				t.Errorf("%s does not start with prose saying what it pins", p)
			}
			var input, env string
			want := -1
			for i, f := range files {
				switch f.Name {
				case "config.toml":
					input = f.Data
				case "env":
					env = f.Data
				case "want":
					want = i
				default:
					t.Fatalf("unexpected section %q", f.Name)
				}
			}
			cfg, err := Parse(strings.NewReader(input), cfgTestDir, cfgEnv(env))
			got := cfgDump(cfg, err)
			if err != nil {
				// No error may echo a variable's value.
				for l := range strings.SplitSeq(env, "\n") {
					if _, v, ok := strings.Cut(l, "="); ok && len(v) >= 6 && strings.Contains(err.Error(), v) {
						t.Errorf("error echoes the value of %s", l)
					}
				}
			}
			if *cfgUpdate {
				if want < 0 {
					files = append(files, cfgTxtarFile{Name: "want"})
					want = len(files) - 1
				}
				files[want].Data = got
				if err := os.WriteFile(p, []byte(cfgFormatTxtar(comment, files)), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want < 0 {
				t.Fatalf("no want section (run go test -run TestParseConfigGolden -update)")
			}
			if d := cfgDiff(files[want].Data, got); d != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// cfgRepoRoot walks up from the package folder to the folder holding go.mod.
func cfgRepoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the package folder")
		}
		dir = parent
	}
}

// cfgAnyEnv supplies a value for every variable but SIGIL_API_KEY.
func cfgAnyEnv(name string) string {
	if name == "SIGIL_API_KEY" {
		return ""
	}
	return "value-of-" + name
}

func TestExampleConfigParses(t *testing.T) {
	root := cfgRepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "sigil-hub.toml.example"))
	if err != nil {
		t.Fatalf("sigil-hub.toml.example: %v", err)
	}
	cfg, err := Parse(bytes.NewReader(data), root, cfgAnyEnv)
	if err != nil {
		t.Fatalf("sigil-hub.toml.example does not parse:\n%v", err)
	}
	if len(cfg.Servers) == 0 {
		t.Error("the example defines no servers")
	}
	// Every key is documented (set, or shown commented out).
	keys := []string{"sign_url", "log_level", "pending_timeout", "startup_timeout", "separator",
		"agent_id", "task_id", "verify", "policy_hash", "policy", "command", "args", "env", "cwd",
		"url", "transport", "headers", "server_id", "server_name", "tools", "allow", "deny",
		"extractors", "attach_attestation", "disabled", "action"}
	for _, k := range keys {
		if !regexp.MustCompile(`(?m)^#?\s*(` + k + `\s*=|\[.*\b` + k + `\b.*\])|\b` + k + `\s*=`).Match(data) {
			t.Errorf("sigil-hub.toml.example does not show key %q", k)
		}
	}
	// Secrets only as references: no header value without a $.
	for _, s := range cfg.Servers {
		for h := range s.Headers {
			if !strings.Contains(s.Headers[h], "value-of-") {
				t.Errorf("servers.%s.headers.%s does not come from the environment", s.Name, h)
			}
		}
	}
}

func TestStarterConfigParses(t *testing.T) {
	cfg, err := Parse(strings.NewReader(Starter()), "/home/u", cfgAnyEnv)
	if err != nil {
		t.Fatalf("Starter() does not parse:\n%v", err)
	}
	if len(cfg.Servers) == 0 {
		t.Error("the starter config defines no servers")
	}
	if strings.Contains(Starter(), "api_key") {
		t.Error("the starter config mentions api_key")
	}
}

// A canary secret must never appear in an error, whichever way it gets
// into the parse: as a variable's value or as a literal in the file.
func TestConfigErrorsNeverEchoSecrets(t *testing.T) {
	const canary = "sk_live_CANARY_7f3e9a"
	env := func(name string) string {
		switch name {
		case "UNSET":
			return ""
		case "NEWLINE":
			return canary + "\n"
		}
		return canary
	}
	tests := []struct {
		name, toml string
		wantSub    string // the error must say this
	}{
		{"literal header", "[servers.a]\nurl = \"https://x.test/mcp\"\nheaders = { Authorization = \"Bearer " + canary + "\" }\n", "servers.a.headers.Authorization: the value must come from the environment"},
		{"unset variable next to a set one", "[servers.a]\nurl = \"https://x.test/mcp\"\nheaders = { Authorization = \"Bearer $TOKEN $UNSET\" }\n", "variable UNSET is not set"},
		{"bad reference in env", "[servers.a]\ncommand = \"x\"\nenv = { A = \"" + canary + "$\" }\n", "servers.a.env.A: a '$' must start"},
		{"expanded value with newline", "[servers.a]\nurl = \"https://x.test/mcp\"\nheaders = { X = \"${NEWLINE}\" }\n", "line break"},
		{"unquoted secret (syntax error)", "[servers.a]\nurl = \"https://x.test/mcp\"\nheaders = { Authorization = Bearer " + canary + " }\n", "not shown"},
		{"secret as header name", "[servers.a]\nurl = \"https://x.test/mcp\"\n[servers.a.headers]\n\"a b\" = \"$TOKEN\"\n", "not a valid HTTP header name"},
		{"secret in url userinfo", "[servers.a]\nurl = \"https://u:" + canary + "@x.test/mcp\"\n", "must not contain user information"},
		{"sign key passed on", "[servers.a]\ncommand = \"x\"\nenv = { K = \"$SIGIL_API_KEY\" }\n", "SIGIL_API_KEY must not be passed"},
		{"api_key in file", "api_key = \"" + canary + "\"\n", "api_key: the Sigil API key is never read"},
		{"env value wrong type", "[servers.a]\ncommand = \"x\"\nenv = { A = [\"" + canary + "\"] }\n", "servers.a.env.A: must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.toml), "/", env)
			if err == nil {
				t.Fatal("Parse succeeded; want an error")
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error echoes the secret:\n%v", err)
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("error = %q; want it to contain %q", err, tt.wantSub)
			}
		})
	}
}

func TestCfgExpand(t *testing.T) {
	env := cfgEnv("A=alpha\nB_2=beta\nEMPTY=")
	tests := []struct {
		in       string
		want     string
		wantRefs int
		wantErrs []string
	}{
		{"plain", "plain", 0, nil},
		{"$A", "alpha", 1, nil},
		{"${A}-$B_2", "alpha-beta", 2, nil},
		{"x${A}y", "xalphay", 1, nil},
		{"$A.$A", "alpha.alpha", 2, nil},
		{"${MISSING:-dflt}", "dflt", 1, nil},
		{"${EMPTY:-dflt}", "dflt", 1, nil},
		{"${A:-dflt}", "alpha", 1, nil},
		{"${MISSING:-}", "", 1, nil},
		{"$$A", "$A", 0, nil},
		{"cost: $$5", "cost: $5", 0, nil},
		{"$MISSING", "", 1, []string{"variable MISSING is not set (use ${MISSING:-default} for a default)"}},
		{"$EMPTY", "", 1, []string{"variable EMPTY is not set (use ${EMPTY:-default} for a default)"}},
		{"$", "", 0, []string{"a '$' must start a variable reference such as $NAME or ${NAME} (write $$ for a literal '$')"}},
		{"$5", "5", 0, []string{"a '$' must start a variable reference such as $NAME or ${NAME} (write $$ for a literal '$')"}},
		{"${A", "", 0, []string{"unterminated ${...} reference"}},
		{"${}", "", 0, []string{"a '$' must start a variable reference such as $NAME or ${NAME} (write $$ for a literal '$')"}},
		{"${A-x}", "", 0, []string{"a '$' must start a variable reference such as $NAME or ${NAME} (write $$ for a literal '$')"}},
		{"$SIGIL_API_KEY", "", 1, []string{"SIGIL_API_KEY must not be passed to an upstream: it is one of the hub's own secrets (SIGIL_API_KEY, SIGIL_HUB_TOKEN_*, SIGIL_UPSTREAM_AUTH); give the server a credential of its own in another variable"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, refs, errs := cfgExpand(tt.in, env, true)
			if len(tt.wantErrs) == 0 && got != tt.want || refs != tt.wantRefs || strings.Join(errs, "|") != strings.Join(tt.wantErrs, "|") {
				t.Errorf("cfgExpand(%q) = %q, %d, %q; want %q, %d, %q", tt.in, got, refs, errs, tt.want, tt.wantRefs, tt.wantErrs)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	const canary = "CANARY-c4f1e2d9b7"
	seeds := []string{
		Starter(),
		"[servers.a]\nurl = \"https://x.test/mcp\"\nheaders = { Authorization = \"Bearer ${TOKEN}\" }\n",
		"[servers.a]\ncommand = \"npx\"\nargs = [\"-y\", \"@s/p@1\"]\nenv = { A = \"$X ${Y:-d} $$\" }\ncwd = \"sub\"\n",
		"[servers.a]\ncommand = \"docker\"\nargs = [\"run\", \"-i\", \"--rm\", \"-e\", \"K=V\", \"img:1\"]\ntools = { allow = [\"a*\"], deny = [\"[\"] }\n",
		"[servers.a.extractors.fetch]\nurl = \"url\"\nmethod = \"m\"\n[servers.a]\nurl = \"http://h\"\n",
		"unsafe_bypass = true\napi_key = \"x\"\npending_timeout = -1\n",
	}
	if root, err := os.Getwd(); err == nil {
		if data, err := os.ReadFile(filepath.Join(root, "..", "sigil-hub.toml.example")); err == nil {
			seeds = append(seeds, string(data))
		}
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if strings.Contains(in, canary) {
			t.Skip("the input itself contains the canary")
		}
		env := func(name string) string {
			if strings.HasPrefix(name, "U") { // some variables are unset
				return ""
			}
			return canary
		}
		_, err := Parse(strings.NewReader(in), "/cfg", env)
		if err != nil && strings.Contains(err.Error(), canary) {
			t.Fatalf("error echoes a variable's value:\n%v", err)
		}
	})
}

// TestMaskedValues: the masked form keeps variable names and literal text
// around references, and never a value that could be a secret.
func TestMaskedValues(t *testing.T) {
	const canary = "canary-literal-7f3a"
	src := `
[servers.a]
command = "x"
env = { TOKEN = "$GH_TOKEN", MIXED = "pre-${PART}-post", DEF = "${V:-` + canary + `}", LIT = "` + canary + `", DOLLAR = "$$HOME" }
[servers.b]
url = "https://example.com/mcp"
headers = { Authorization = "Bearer ${API_TOKEN}", "X-Key" = "$K" }
`
	got, err := MaskedValues([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a.env.TOKEN":             "${GH_TOKEN}",
		"a.env.MIXED":             "pre-${PART}-post",
		"a.env.DEF":               "${V:-***}",
		"a.env.LIT":               "***",
		"a.env.DOLLAR":            "***",
		"b.headers.Authorization": "Bearer ${API_TOKEN}",
		"b.headers.X-Key":         "${K}",
	}
	if len(got) != len(want) {
		t.Errorf("got %d values, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
		if strings.Contains(got[k], canary) {
			t.Errorf("%s leaks the literal value", k)
		}
	}
	if _, err := MaskedValues([]byte("[servers.a]\nenv = { K = " + canary + " }")); err == nil || strings.Contains(err.Error(), canary) {
		t.Errorf("syntax error = %v, want an error without the value", err)
	}
}

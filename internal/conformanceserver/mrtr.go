package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// This file holds the multi round-trip tools and prompt of the
// input-required-result-* scenarios. Each answers a first call with
// resultType "input_required" (inputRequests keyed as the scenario expects,
// and a requestState where it needs one), and a retry carrying the answers
// (inputResponses) and the echoed state with a complete result. mcp-go's
// server sends a 2026-07-28 caller the input_required result as it is, and
// performs the matching 2025 server→client requests for a 2025-era session.
//
// Every requestState is signed (stateSigner): a retry whose state fails the
// check gets -32602 from the edge (edge.go), so a client cannot forge the
// step it is at.

// stateTTL bounds how long a requestState may be echoed back.
const stateTTL = 10 * time.Minute

// state is what a requestState carries, signed.
type state struct {
	Tool  string `json:"tool"`           // the tool or prompt it was issued for
	Round int    `json:"round"`          // the step it resumes (multi_round)
	Name  string `json:"name,omitempty"` // an answer carried to the next round
	Nonce string `json:"nonce"`          // makes every state distinct
	Exp   int64  `json:"exp"`            // unix seconds after which it is refused
}

// stateSigner signs and checks requestState with HMAC-SHA256 under a key
// drawn at start: a state is valid only in the process that issued it.
type stateSigner struct{ key []byte }

func newStateSigner() *stateSigner {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("conformanceserver: no randomness for the requestState key: " + err.Error())
	}
	return &stateSigner{key: key}
}

var errBadState = errors.New("invalid requestState: not issued by this server, altered, or expired; call again without requestState")

func (s *stateSigner) mac(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sign returns the requestState for st: base64url(JSON) "." base64url(MAC).
func (s *stateSigner) sign(st state) string {
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	st.Nonce = base64.RawURLEncoding.EncodeToString(nonce)
	st.Exp = time.Now().Add(stateTTL).Unix()
	b, _ := json.Marshal(st)
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + s.mac(payload)
}

// open checks raw and returns what it carries.
func (s *stateSigner) open(raw string) (state, error) {
	payload, sig, ok := strings.Cut(raw, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.mac(payload))) {
		return state{}, errBadState
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return state{}, errBadState
	}
	var st state
	if json.Unmarshal(b, &st) != nil || time.Now().Unix() > st.Exp {
		return state{}, errBadState
	}
	return st, nil
}

// resume returns the state of a retry of tool, or ok=false when the call
// carries none (a first call). A state issued for another tool, or one that
// does not verify, is an error.
func (s *stateSigner) resume(raw, tool string) (st state, ok bool, err error) {
	if raw == "" {
		return state{}, false, nil
	}
	st, err = s.open(raw)
	if err != nil {
		return state{}, false, err
	}
	if st.Tool != tool {
		return state{}, false, fmt.Errorf("invalid requestState: issued for %q, not %q; call again without requestState", st.Tool, tool)
	}
	return st, true, nil
}

// formElicitation is a form-mode elicitation for a flat object schema.
func formElicitation(message string, properties map[string]any, required ...string) mcp.ElicitationParams {
	return mcp.ElicitationParams{Message: message, RequestedSchema: objectSchema(properties, required...)}
}

func askName(message string) mcp.ElicitationParams {
	return formElicitation(message, map[string]any{"name": map[string]any{"type": "string"}}, "name")
}

func sampling(text string, maxTokens int) mcp.CreateMessageParams {
	return mcp.CreateMessageParams{
		Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent(text)}},
		MaxTokens: maxTokens,
	}
}

// accepted returns the content of an accepted elicitation answer under key,
// or ok=false if there is none, it does not decode as an ElicitResult, or the
// user did not accept.
func accepted(responses mcp.InputResponses, key string) (map[string]any, bool) {
	r := server.ElicitationResponse(responses, key)
	if r == nil || r.Action != mcp.ElicitationResponseActionAccept {
		return nil, false
	}
	content, _ := r.Content.(map[string]any)
	return content, true
}

// samplingText returns the text of a sampling answer under key.
func samplingText(responses mcp.InputResponses, key string) (string, bool) {
	r := server.SamplingResponse(responses, key)
	if r == nil {
		return "", false
	}
	switch c := r.Content.(type) {
	case mcp.TextContent:
		return c.Text, true
	case map[string]any:
		t, _ := c["text"].(string)
		return t, true
	}
	return "", true
}

func (f *fixture) addInputRequiredTools() {
	// input-required-result-basic-elicitation, -missing-input-response,
	// -result-type, -ignore-extra-params and -validate-input: answers are
	// keyed "user_name"; a retry without a usable one (missing, of the wrong
	// shape, declined) is asked again, extra keys are ignored.
	f.tool("test_input_required_result_elicitation", "input_required: one elicitation (user_name)",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if content, ok := accepted(req.Params.InputResponses, "user_name"); ok {
				return textResult(fmt.Sprintf("Hello, %v!", content["name"])), nil
			}
			return server.NewInputRequestBuilder("").Elicit("user_name", askName("What is your name?")).ToolResult(), nil
		})

	// input-required-result-basic-sampling.
	f.tool("test_input_required_result_sampling", "input_required: one sampling request (capital_question)",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if text, ok := samplingText(req.Params.InputResponses, "capital_question"); ok {
				return textResult("Sampling result: " + text), nil
			}
			return server.NewInputRequestBuilder("").Sample("capital_question", sampling("What is the capital of France?", 100)).ToolResult(), nil
		})

	// input-required-result-basic-list-roots.
	f.tool("test_input_required_result_list_roots", "input_required: one roots/list request (client_roots)",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if roots := server.RootsResponse(req.Params.InputResponses, "client_roots"); roots != nil {
				return textResult(fmt.Sprintf("Found %d root(s)", len(roots.Roots))), nil
			}
			return server.NewInputRequestBuilder("").Roots("client_roots").ToolResult(), nil
		})

	// input-required-result-request-state: the retry must echo the signed
	// state; the result says "state-ok" once it verified.
	f.tool("test_input_required_result_request_state", "input_required: elicitation plus a signed requestState",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			const name = "test_input_required_result_request_state"
			_, resumed, err := f.states.resume(req.Params.RequestState, name)
			if err != nil {
				return nil, err
			}
			if content, ok := accepted(req.Params.InputResponses, "confirm"); ok && resumed {
				return textResult(fmt.Sprintf("state-ok: requestState validated (ok=%v)", content["ok"])), nil
			}
			return server.NewInputRequestBuilder(f.states.sign(state{Tool: name})).
				Elicit("confirm", formElicitation("Please confirm", map[string]any{"ok": map[string]any{"type": "boolean"}}, "ok")).
				ToolResult(), nil
		})

	// input-required-result-multiple-input-requests: elicitation, sampling
	// and roots in one result; complete once all three are answered.
	f.tool("test_input_required_result_multiple_inputs", "input_required: elicitation, sampling and roots at once",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			const name = "test_input_required_result_multiple_inputs"
			_, resumed, err := f.states.resume(req.Params.RequestState, name)
			if err != nil {
				return nil, err
			}
			in := req.Params.InputResponses
			user, okUser := accepted(in, "user_name")
			greeting, okGreeting := samplingText(in, "greeting")
			roots := server.RootsResponse(in, "client_roots")
			if resumed && okUser && okGreeting && roots != nil {
				return textResult(fmt.Sprintf("Name: %v; Greeting: %s; Roots: %d", user["name"], greeting, len(roots.Roots))), nil
			}
			return server.NewInputRequestBuilder(f.states.sign(state{Tool: name})).
				Elicit("user_name", askName("What is your name?")).
				Sample("greeting", sampling("Generate a greeting", 50)).
				Roots("client_roots").
				ToolResult(), nil
		})

	// input-required-result-multi-round: three rounds, a new state each time.
	f.tool("test_input_required_result_multi_round", "input_required: two elicitation rounds, then complete",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			const name = "test_input_required_result_multi_round"
			st, resumed, err := f.states.resume(req.Params.RequestState, name)
			if err != nil {
				return nil, err
			}
			in := req.Params.InputResponses
			if resumed && st.Round == 1 {
				if content, ok := accepted(in, "step1"); ok {
					return server.NewInputRequestBuilder(f.states.sign(state{Tool: name, Round: 2, Name: fmt.Sprint(content["name"])})).
						Elicit("step2", formElicitation("Step 2: What is your favorite color?",
							map[string]any{"color": map[string]any{"type": "string"}}, "color")).
						ToolResult(), nil
				}
			}
			if resumed && st.Round == 2 {
				if content, ok := accepted(in, "step2"); ok {
					return textResult(fmt.Sprintf("Multi-round complete for %s who likes %v", st.Name, content["color"])), nil
				}
			}
			// A first call, or a retry without the answer its round needs:
			// (re)start at round 1.
			return server.NewInputRequestBuilder(f.states.sign(state{Tool: name, Round: 1})).
				Elicit("step1", askName("Step 1: What is your name?")).
				ToolResult(), nil
		})

	// input-required-result-tampered-state: an altered state is refused with
	// an error, never served (the edge answers -32602 first; the error here
	// is for callers that reach the handler another way).
	f.tool("test_input_required_result_tampered_state", "input_required: a signed requestState that must not be altered",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			const name = "test_input_required_result_tampered_state"
			_, resumed, err := f.states.resume(req.Params.RequestState, name)
			if err != nil {
				return nil, err
			}
			if _, ok := accepted(req.Params.InputResponses, "confirm"); ok && resumed {
				return textResult("integrity-ok: state verified"), nil
			}
			return server.NewInputRequestBuilder(f.states.sign(state{Tool: name})).
				Elicit("confirm", formElicitation("Please confirm", map[string]any{"ok": map[string]any{"type": "boolean"}}, "ok")).
				ToolResult(), nil
		})

	// input-required-result-capability-check: ask only for what the caller
	// declared (the scenario declares sampling and not elicitation).
	f.tool("test_input_required_result_capabilities", "input_required: asks only for the input kinds the client declared",
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			const name = "test_input_required_result_capabilities"
			if _, _, err := f.states.resume(req.Params.RequestState, name); err != nil {
				return nil, err
			}
			if len(req.Params.InputResponses) > 0 {
				keys := make([]string, 0, len(req.Params.InputResponses))
				for k := range req.Params.InputResponses {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				return textResult("capabilities-ok: received " + strings.Join(keys, ",")), nil
			}
			caps := clientCaps(ctx)
			b := server.NewInputRequestBuilder(f.states.sign(state{Tool: name}))
			asked := false
			if caps.Elicitation != nil {
				b.Elicit("elicit_input", formElicitation("Elicitation input", map[string]any{"value": map[string]any{"type": "string"}}, "value"))
				asked = true
			}
			if caps.Sampling != nil {
				b.Sample("sample_input", sampling("Sample request", 50))
				asked = true
			}
			if caps.Roots != nil {
				b.Roots("roots_input")
				asked = true
			}
			if !asked {
				return textResult("No supported capabilities declared"), nil
			}
			return b.ToolResult(), nil
		})

	// input-required-result-non-tool-request: prompts/get can ask too.
	f.addPrompt(mcp.NewPrompt("test_input_required_result_prompt",
		mcp.WithPromptDescription("input_required: asks for the context to put in the prompt")),
		func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			if content, ok := accepted(req.Params.InputResponses, "user_context"); ok {
				return &mcp.GetPromptResult{Messages: []mcp.PromptMessage{userText(fmt.Sprintf("Prompt with context: %v", content["context"]))}}, nil
			}
			return server.NewInputRequestBuilder("").
				Elicit("user_context", formElicitation("What context should the prompt use?",
					map[string]any{"context": map[string]any{"type": "string"}}, "context")).
				PromptResult(), nil
		})
}

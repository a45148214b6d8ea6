package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// caller sends raw JSON-RPC requests through the client's transport. The
// typed client turns a JSON-RPC error into a plain Go error and drops
// error.data, which is where the hub puts its decision
// (docs/protocol.md#json-rpc-errors), so the demo reads the raw response.
// Safe for concurrent use.
type caller struct {
	c   *client.Client
	seq atomic.Int64
}

func (r *caller) send(ctx context.Context, method string, params any) (*transport.JSONRPCResponse, error) {
	// String ids never collide with the client's own integer ids.
	id := mcp.NewRequestId(fmt.Sprintf("demo-%d", r.seq.Add(1)))
	resp, err := r.c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: id, Method: method, Params: params})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return resp, nil
}

// toolInfo is the part of a listed tool the transcript shows.
type toolInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// listTools returns the hub's tools (all pages).
func (r *caller) listTools(ctx context.Context) ([]toolInfo, error) {
	var all []toolInfo
	params := map[string]any{}
	for {
		resp, err := r.send(ctx, "tools/list", params)
		if err != nil {
			return nil, err
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("tools/list: JSON-RPC error %d: %s", resp.Error.Code, resp.Error.Message)
		}
		var page struct {
			Tools      []toolInfo `json:"tools"`
			NextCursor string     `json:"nextCursor"`
		}
		if err := json.Unmarshal(resp.Result, &page); err != nil {
			return nil, fmt.Errorf("tools/list: decode the result: %w", err)
		}
		all = append(all, page.Tools...)
		if page.NextCursor == "" {
			return all, nil
		}
		params = map[string]any{"cursor": page.NextCursor}
	}
}

// callTool runs one step's tools/call and classifies the answer. pending
// is the hub's pending timeout, which a held call may use up. It returns
// an error only when no answer arrived at all.
func (r *caller) callTool(ctx context.Context, s step, pending time.Duration) (outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, pending+callBudget)
	defer cancel()
	params := map[string]any{"name": s.tool, "arguments": json.RawMessage(s.args)}
	if s.progressToken != "" {
		params["_meta"] = map[string]any{"progressToken": s.progressToken}
	}
	resp, err := r.send(ctx, "tools/call", params)
	if err != nil {
		return outcome{}, err
	}
	if e := resp.Error; e != nil {
		o := outcome{verdict: rpcError, code: e.Code, message: e.Message}
		var data struct {
			Decision  string `json:"decision"`
			ErrorCode string `json:"error_code"`
			Message   string `json:"message"`
			HoldID    string `json:"hold_id"`
		}
		if b, err := json.Marshal(e.Data); err == nil {
			_ = json.Unmarshal(b, &data) // data is optional; absent fields stay empty
		}
		if e.Code == codeBlocked && data.Decision == "DENIED" {
			o.verdict, o.errorCode, o.holdID = denied, data.ErrorCode, data.HoldID
			if data.Message != "" {
				o.message = data.Message
			}
		}
		return o, nil
	}
	var result struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(resp.Result, &result); err != nil {
		return outcome{}, fmt.Errorf("decode the tools/call result: %w", err)
	}
	var text []string
	for _, c := range result.Content {
		if c.Type == "text" {
			text = append(text, c.Text)
		}
	}
	return outcome{verdict: approved, message: strings.Join(text, "\n"), toolError: result.IsError}, nil
}

// describe renders an outcome on one line (two for a denial's message).
func (o outcome) describe() string {
	switch o.verdict {
	case approved:
		msg := strings.TrimSpace(o.message)
		if lines := strings.Split(msg, "\n"); len(lines) > 1 {
			msg = strings.Join(lines, " | ")
		}
		if r := []rune(msg); len(r) > 90 {
			msg = string(r[:87]) + "..."
		}
		if o.toolError {
			return fmt.Sprintf("%-9s the tool answered with an error: %s", approved, msg)
		}
		return fmt.Sprintf("%-9s %s", approved, msg)
	case denied:
		s := fmt.Sprintf("%-9s %s (JSON-RPC %d)\n              %s", denied, o.errorCode, o.code, o.message)
		if o.holdID != "" {
			s += " [hold " + o.holdID + "]"
		}
		return s
	}
	return fmt.Sprintf("%-9s JSON-RPC %d: %s", rpcError, o.code, o.message)
}

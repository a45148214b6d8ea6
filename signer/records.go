package signer

import (
	"encoding/json"
	"time"
)

// recentMax is how many decision records the approval page shows.
const recentMax = 50

// Record is one decision record: an authorize decision (Surface
// "authorize") or a person's hold resolution (Surface "hold_resolve").
// It never holds tool arguments or keys. It is a plain value.
type Record struct {
	Time       time.Time `json:"time"`
	Surface    string    `json:"surface"`
	Decision   string    `json:"decision"` // ALLOWED, DENIED or PENDING
	Code       string    `json:"error_code,omitempty"`
	Message    string    `json:"message,omitempty"`
	Rule       string    `json:"rule,omitempty"`
	Action     string    `json:"action,omitempty"`
	ServerID   string    `json:"server_id,omitempty"`
	Tool       string    `json:"tool,omitempty"`
	AgentID    string    `json:"agent_id,omitempty"`
	HoldID     string    `json:"hold_id,omitempty"`
	TxCommit   string    `json:"tx_commit,omitempty"`
	PolicyHash string    `json:"policy_hash"`
}

// record stamps rec, keeps it for the approval page, logs it and appends it
// to the decision log.
func (s *Server) record(rec Record) {
	rec.Time = s.o.Now().UTC()
	s.mu.Lock()
	s.recent = append(s.recent, rec)
	if len(s.recent) > recentMax {
		s.recent = append(s.recent[:0], s.recent[len(s.recent)-recentMax:]...)
	}
	s.mu.Unlock()
	// The client chose action and agent: escaped, so that they cannot
	// drive the terminal the log is read on (Visible).
	s.o.Logger.Info("decision", "surface", rec.Surface, "decision", rec.Decision, "error_code", rec.Code,
		"action", Visible(rec.Action), "agent_id", Visible(rec.AgentID), "hold_id", rec.HoldID)
	if s.o.DecisionLog == nil {
		return
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	b = append(b, '\n')
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if _, err := s.o.DecisionLog.Write(b); err != nil {
		s.o.Logger.Error("writing the decision log failed", "err", err)
	}
}

// Recent returns the last decision records, newest first. Safe for
// concurrent use.
func (s *Server) Recent() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(s.recent))
	for i, r := range s.recent {
		out[len(out)-1-i] = r
	}
	return out
}

package router

import (
	"errors"
	"fmt"
	"strings"
)

// ErrCollision is matched (errors.Is) by a Problem of kind Collision: two
// routes wanted the same exposed name (or the same exact resource URI), so
// the name was withheld from both.
var ErrCollision = errors.New("name collision")

// ProblemKind classifies a Problem. The zero value is not a valid kind.
type ProblemKind int

const (
	// Collision: two or more routes produced the same exposed name (tools,
	// prompts), the same exact resource URI, or the same resource template.
	// The name is withheld entirely: none of the routes is in the table, so a
	// rebuild can never silently switch a name from one upstream to another.
	Collision ProblemKind = iota + 1
	// Renamed: in hub mode the name <upstream><sep><name> did not match
	// ^[A-Za-z0-9_-]{1,64}$ and was rewritten deterministically. The route is
	// in the table under Problem.Exposed. The hub logs it.
	Renamed
	// Filtered: a tool was removed by its upstream's allow/deny globs. It is
	// absent from the table (uncallable). Debug information only.
	Filtered
	// InvalidName: a name, upstream or template could not be used as given
	// (empty, listed twice, malformed template, malformed glob). Message says
	// what happened to it; a name listed twice by one upstream is kept once,
	// everything else reported with this kind is withheld.
	InvalidName
)

// String returns the kind's lowercase name, e.g. "collision".
func (k ProblemKind) String() string {
	switch k {
	case Collision:
		return "collision"
	case Renamed:
		return "renamed"
	case Filtered:
		return "filtered"
	case InvalidName:
		return "invalid_name"
	default:
		return fmt.Sprintf("ProblemKind(%d)", int(k))
	}
}

// Problem is one thing Build could not do as asked, or did differently.
// Problems are values; they are safe to copy and to share between goroutines.
// A Problem is also an error; for Kind == Collision it wraps ErrCollision.
type Problem struct {
	Kind ProblemKind
	// Exposed is the exposed name concerned (for resources: the URI or
	// template). For Filtered, it is the name the tool would have had.
	Exposed string
	// Routes are the routes concerned, in source order. For Collision there
	// are at least two.
	Routes []Route
	// Message says in plain words what happened; it never contains anything
	// but names, so it is safe to log.
	Message string
}

// Error returns "<kind>: <message>".
func (p Problem) Error() string { return p.Kind.String() + ": " + p.Message }

// Unwrap returns ErrCollision for a collision and nil otherwise.
func (p Problem) Unwrap() error {
	if p.Kind == Collision {
		return ErrCollision
	}
	return nil
}

// Err returns the problem as an error (errors.Is(p.Err(), ErrCollision)
// reports whether it is a collision).
func (p Problem) Err() error { return p }

func collisionMessage(what, exposed string, routes []Route) string {
	parts := make([]string, len(routes))
	for i, r := range routes {
		parts[i] = fmt.Sprintf("%s %q of upstream %q", what, r.Name, r.Upstream)
	}
	return fmt.Sprintf("%q is claimed by %s; withheld from all of them", exposed, strings.Join(parts, " and "))
}

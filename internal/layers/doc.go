// Package layers holds no code: its test checks, for every package of the
// module, the imports its doc comment allows and forbids (README "Layout"),
// so that the architecture the folders show is the one the compiler sees.
package layers

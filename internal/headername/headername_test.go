package headername

import "testing"

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"Authorization": true, "X-Api-Key": true, "x_y.z~1": true, "!#$%&'*+-.^_`|~": true,
		"": false, "Bad Name": false, "a:b": false, "é": false, "a\x00": false, "(x)": false,
	} {
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}

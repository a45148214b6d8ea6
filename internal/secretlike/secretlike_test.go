package secretlike

import "testing"

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"sk_live_51Habcdefghijklmnop", true},
		{"ghp_abcdefghijklmnopqrstuvwxyz0123456789", true},
		{"github_pat_11ABCDEFG0123456789_abcdefghijklmnop", true},
		{"xoxb-123456789012-abcdefghij", true},
		{"AKIAIOSFODNN7EXAMPLE", true},
		{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc", true},
		{"-----BEGIN OPENSSH PRIVATE KEY-----", true},
		{"postgres://app:pw@db/app", true},
		{"https://h.example/hook?token=x", true},
		{"aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3", true}, // random base62
		// Not secrets: CamelCase names with numbers, hex digests, UUIDs, paths, words.
		{"/tmp/TestHTTPSessionsAreIsolated1234567/001/log", false},
		{"/tmp/TestFaultD53BadResponseIDs3045418888/003/log", false},
		{"TestFaultD53BadResponseIDs3045418888", false},
		{"3925864a1b2c3d4e5f60718293a4b5c6d7e8f901", false},
		{"550e8400-e29b-41d4-a716-446655440000", false},
		{"https://login.example.com/oauth", false},
		{"debug", false},
		{"task-sk_live_", false},
	} {
		if got := Format(tc.text); got != tc.want {
			t.Errorf("Format(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestTokenRun(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"abcd1234efgh5678", true},
		{"pre_abcd1234efgh5678_post", true},
		{"abcd1234efgh567", false}, // 15
		{"abcdefghijklmnopqrst", false},
		{"postgres://app:", false},
		{"@db-prod-01.internal:5432/app", false},
	} {
		if got := TokenRun(tc.text); got != tc.want {
			t.Errorf("TokenRun(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestNameAndHarmless(t *testing.T) {
	if !Name("github_personal_access_token") || !Name("DB_PASSWORD") || Name("LOG_LEVEL") {
		t.Error("Name")
	}
	if !Harmless("true") || !Harmless("3600") || Harmless("hunter2") || Harmless("1234567") {
		t.Error("Harmless")
	}
}

package main

import (
	"net/url"
	"slices"
	"testing"
)

func TestCounts(t *testing.T) {
	got, err := counts("-senders", "1, 16,64")
	if err != nil || !slices.Equal(got, []int{1, 16, 64}) {
		t.Fatalf("counts: %v, %v", got, err)
	}
	for _, bad := range []string{"", "1,,2", "0", "-3", "x"} {
		if _, err := counts("-senders", bad); err == nil {
			t.Errorf("counts(%q): no error", bad)
		}
	}
}

func TestWithPoolKeepsTheURL(t *testing.T) {
	got, err := withPool("postgres://casetrail@/bench_server_1?host=/tmp/pg&port=5433&sslmode=disable", 16)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != "/bench_server_1" || u.User.Username() != "casetrail" ||
		q.Get("host") != "/tmp/pg" || q.Get("port") != "5433" || q.Get("sslmode") != "disable" || q.Get("pool_max_conns") != "16" {
		t.Fatalf("withPool: %s", got)
	}
}

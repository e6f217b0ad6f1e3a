package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlural(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0 attachments", 1: "1 attachment", 2: "2 attachments"} {
		require.Equal(t, want, plural(n, "attachment", "attachments"))
	}
}

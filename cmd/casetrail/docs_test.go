package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// commands are the subcommands run dispatches to.
var commands = []string{"serve", "migrate", "keys", "verify", "export", "verify-bundle", "expunge", "version"}

// commandFlags asks each command for its flags (-h) and returns them with
// their defaults, as the flag package prints them.
func commandFlags(t *testing.T) map[string]map[string]string {
	t.Helper()
	flagLine := regexp.MustCompile(`^  -(\S+)`)
	defaultOf := regexp.MustCompile(`\(default "?([^")]*)"?\)`)
	out := map[string]map[string]string{}
	for _, cmd := range commands {
		out[cmd] = map[string]string{}
		if cmd == "version" {
			continue
		}
		var stderr bytes.Buffer
		err := run(context.Background(), []string{cmd, "-h"}, func(string) string { return "" }, &bytes.Buffer{}, &stderr)
		require.True(t, errors.Is(err, flag.ErrHelp), "%s -h: %v", cmd, err)
		require.True(t, strings.HasPrefix(stderr.String(), "usage: casetrail "+cmd+" "), "%s -h begins with its usage: %s", cmd, stderr.String())
		name := ""
		for _, line := range strings.Split(stderr.String(), "\n") {
			if m := flagLine.FindStringSubmatch(line); m != nil {
				name = m[1]
				out[cmd][name] = ""
			}
			if m := defaultOf.FindStringSubmatch(line); m != nil && name != "" {
				out[cmd][name] = m[1]
			}
		}
	}
	return out
}

// usageBlocks splits a usage text into each command's lines: from a line
// that starts with "casetrail NAME" to the next, or to a blank line.
func usageBlocks(text string) map[string]string {
	start := regexp.MustCompile(`^\s*casetrail ([a-z-]+)`)
	blocks := map[string]string{}
	cmd := ""
	for _, line := range strings.Split(text, "\n") {
		if m := start.FindStringSubmatch(line); m != nil {
			cmd = m[1]
		} else if strings.TrimSpace(line) == "" {
			cmd = ""
		}
		if cmd != "" {
			blocks[cmd] += line + "\n"
		}
	}
	return blocks
}

// TestCommandsAreDocumented holds README's Commands section and the
// program's own usage to the commands and flags run takes, both ways, and
// to the flags' defaults.
func TestCommandsAreDocumented(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(raw), "\n## Commands\n")
	require.True(t, ok, "README.md has no Commands section")
	section, _, _ = strings.Cut(section, "\n## ")

	flags := commandFlags(t)
	dashed := regexp.MustCompile(`--([a-z][a-z-]*)`)
	for doc, text := range map[string]string{"README.md": section, "the usage": usage} {
		blocks := usageBlocks(text)
		for _, cmd := range commands {
			block, ok := blocks[cmd]
			if !ok {
				t.Errorf("%s does not show casetrail %s", doc, cmd)
				continue
			}
			for name, def := range flags[cmd] {
				if !strings.Contains(block, "--"+name) {
					t.Errorf("%s: casetrail %s: --%s is not shown", doc, cmd, name)
				}
				// --config's default is CASETRAIL_CONFIG, which the
				// Configuration section names.
				if def != "" && name != "config" && doc == "README.md" && !strings.Contains(block, "("+def+")") {
					t.Errorf("%s: casetrail %s: --%s's default (%s) is not shown", doc, cmd, name, def)
				}
			}
			for _, m := range dashed.FindAllStringSubmatch(block, -1) {
				if _, ok := flags[cmd][m[1]]; !ok {
					t.Errorf("%s: casetrail %s shows --%s, which it does not take", doc, cmd, m[1])
				}
			}
		}
		for cmd := range blocks {
			if _, ok := flags[cmd]; !ok {
				t.Errorf("%s shows casetrail %s, which is not a command", doc, cmd)
			}
		}
	}
}

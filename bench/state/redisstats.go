package main

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// errNotMonitorLine is returned by parseMonitorLine for lines that are not
// a MONITOR record ("OK", blank lines).
var errNotMonitorLine = errors.New("not a MONITOR line")

// commandStats parses the "# Commandstats" section of INFO into calls by
// command name ("evalsha", "get", "config|resetstat"). Other lines are
// ignored.
func commandStats(info string) map[string]int64 {
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd || name == "" {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
					out[name] = n
				}
			}
		}
	}
	return out
}

// infoField returns a numeric field ("used_memory", "used_cpu_sys") of INFO.
func infoField(info, field string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), field+":"); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// monitorLine is one command seen by MONITOR:
//
//	1700000000.123456 [0 127.0.0.1:5555] "evalsha" "ab12…" "1" "portcullis:rl:bench" …
//	1700000000.123460 [0 lua] "TIME"
type monitorLine struct {
	FromScript bool     // run inside a Lua script: not a round trip
	Args       []string // command (lower case) and arguments
}

// parseMonitorLine parses one line of `redis-cli monitor` output.
// Hand-written: the format is tiny and no library parses it.
func parseMonitorLine(line string) (monitorLine, error) {
	_, rest, ok := strings.Cut(strings.TrimSpace(line), " [")
	if !ok {
		return monitorLine{}, errNotMonitorLine
	}
	src, rest, ok := strings.Cut(rest, "] ")
	if !ok {
		return monitorLine{}, errNotMonitorLine
	}
	_, client, _ := strings.Cut(src, " ")
	var m monitorLine
	m.FromScript = client == "lua"
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] != '"' {
			return monitorLine{}, fmt.Errorf("argument not quoted at %q: %w", truncate(rest), errNotMonitorLine)
		}
		end := 1
		for end < len(rest) && rest[end] != '"' {
			if rest[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(rest) {
			return monitorLine{}, fmt.Errorf("unterminated argument: %w", errNotMonitorLine)
		}
		m.Args = append(m.Args, rest[1:end])
		rest = rest[end+1:]
	}
	if len(m.Args) == 0 {
		return monitorLine{}, fmt.Errorf("no command: %w", errNotMonitorLine)
	}
	m.Args[0] = strings.ToLower(m.Args[0])
	return m, nil
}

func truncate(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// purpose names what a client command does for the gateway, by the keys it
// touches (the store's layout: rl: limiter, kv:killswitch:, q:{…}, usage).
func (m monitorLine) purpose() string {
	all := strings.Join(m.Args[1:], " ")
	switch {
	case strings.Contains(all, ":rl:"):
		return "rate limit (GCRA script)"
	case strings.Contains(all, ":kv:killswitch:"):
		return "kill switch read"
	case strings.Contains(all, ":q:{"):
		return "queue claim (worker poll)"
	case strings.Contains(all, ":usage"), m.Args[0] == "multi", m.Args[0] == "exec":
		return "usage records (batched)"
	case m.Args[0] == "ping", m.Args[0] == "hello", m.Args[0] == "client", m.Args[0] == "select":
		return "connection setup / ping"
	}
	return "other: " + m.Args[0]
}

// roundTrips counts client commands (not those run inside scripts) by
// purpose. MULTI…EXEC is one round trip (go-redis pipelines it), so only
// EXEC counts for usage records.
func roundTrips(lines []string) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		m, err := parseMonitorLine(l)
		if err != nil || m.FromScript {
			continue
		}
		if p := m.purpose(); p != "usage records (batched)" || m.Args[0] == "exec" {
			out[p]++
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

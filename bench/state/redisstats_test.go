package main

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var monitorCases = []struct {
	name string
	line string
	want monitorLine
	err  bool
}{
	{"client-evalsha", `1700000000.123456 [0 127.0.0.1:5555] "evalsha" "ab12" "1" "portcullis:rl:bench" "1" "1000000"`,
		monitorLine{Args: []string{"evalsha", "ab12", "1", "portcullis:rl:bench", "1", "1000000"}}, false},
	{"inside-script", `1700000000.123460 [0 lua] "TIME"`, monitorLine{FromScript: true, Args: []string{"time"}}, false},
	{"escaped-quote", `1.0 [3 unix:/tmp/r.sock] "set" "k" "a\"b"`, monitorLine{Args: []string{"set", "k", `a\"b`}}, false},
	{"ok-reply", "OK", monitorLine{}, true},
	{"unterminated", `1.0 [0 lua] "GET`, monitorLine{}, true},
	{"unquoted", `1.0 [0 lua] GET`, monitorLine{}, true},
	{"no-command", `1.0 [0 lua] `, monitorLine{}, true},
}

func TestParseMonitorLine(t *testing.T) {
	for _, tc := range monitorCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMonitorLine(tc.line)
			if tc.err {
				if !errors.Is(err, errNotMonitorLine) {
					t.Fatalf("err = %v, want errNotMonitorLine", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseMonitorLine(f *testing.F) {
	for _, tc := range monitorCases {
		f.Add(tc.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, err := parseMonitorLine(line)
		if err == nil && len(m.Args) == 0 {
			t.Fatalf("%q: no error and no command", line)
		}
		if err != nil && !errors.Is(err, errNotMonitorLine) {
			t.Fatalf("%q: error %v does not wrap errNotMonitorLine", line, err)
		}
	})
}

func TestRoundTrips(t *testing.T) {
	lines := []string{
		`1.0 [0 127.0.0.1:1] "evalsha" "ab" "1" "portcullis:rl:bench" "1" "2"`,
		`1.0 [0 lua] "TIME"`,
		`1.0 [0 lua] "GET" "portcullis:rl:bench"`,
		`1.0 [0 127.0.0.1:1] "get" "portcullis:kv:killswitch:bench"`,
		`1.0 [0 127.0.0.1:2] "multi"`,
		`1.0 [0 127.0.0.1:2] "zadd" "portcullis:usage" "1" "x"`,
		`1.0 [0 127.0.0.1:2] "exec"`,
		`1.0 [0 127.0.0.1:3] "evalsha" "cd" "2" "portcullis:q:{vendor-calls}:s" "portcullis:q:{vendor-calls}:d"`,
		"OK",
	}
	want := map[string]int{"rate limit (GCRA script)": 1, "kill switch read": 1, "usage records (batched)": 1, "queue claim (worker poll)": 1}
	if diff := cmp.Diff(want, roundTrips(lines)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

var statsCases = []struct {
	name string
	info string
	want map[string]int64
}{
	{"two-commands", "# Commandstats\r\ncmdstat_evalsha:calls=12,usec=40,usec_per_call=3.33,rejected_calls=0,failed_calls=0\r\ncmdstat_config|resetstat:calls=1,usec=1\r\n",
		map[string]int64{"evalsha": 12, "config|resetstat": 1}},
	{"other-sections-ignored", "# Stats\r\ntotal_commands_processed:9\r\n", map[string]int64{}},
	{"bad-count", "cmdstat_get:calls=x,usec=1\r\ncmdstat_set:calls=-1\r\n", map[string]int64{}},
}

func TestCommandStats(t *testing.T) {
	for _, tc := range statsCases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, commandStats(tc.info)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzCommandStats(f *testing.F) {
	for _, tc := range statsCases {
		f.Add(tc.info)
	}
	f.Fuzz(func(t *testing.T, info string) {
		for name, n := range commandStats(info) {
			if name == "" || n < 0 {
				t.Fatalf("%q: entry %q = %d", info, name, n)
			}
		}
	})
}

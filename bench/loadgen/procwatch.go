package main

import (
	"time"

	"github.com/prometheus/procfs"
)

// ProcUsage is what one process used during the measured window.
type ProcUsage struct {
	Label string `json:"label"`
	PID   int    `json:"pid"`
	// CPUPercent is CPU time over wall time in the window: 100 is one
	// core fully busy.
	CPUPercent float64 `json:"cpu_percent"`
	// PeakRSSBytes is VmHWM from /proc/PID/status at the end of the run:
	// the process's peak resident set since it started.
	PeakRSSBytes uint64 `json:"peak_rss_bytes"`
	// StartRSSBytes is VmRSS when the run was planned, before its first
	// connection: what the process held idle, so that peak minus start is
	// what the run's calls cost.
	StartRSSBytes uint64 `json:"start_rss_bytes,omitempty"`
	// RunQueueWaitPercent is the time the process's threads spent ready
	// to run but waiting for a CPU (the kernel's run queue, from
	// /proc/PID/task/*/schedstat) over wall time in the window: behind
	// other processes on the cores it may use, or behind its own other
	// threads there (a Go server pinned to one core has several, e.g. one
	// back from a syscall while another runs Go code). -1 when not
	// measured.
	RunQueueWaitPercent float64 `json:"run_queue_wait_percent"`
}

type watched struct {
	label      string
	proc       procfs.Proc
	rss0       uint64
	cpu0, cpu1 float64
	ok         bool
	rq0, rq1   uint64
	rqOK       bool
}

// runQueueWait is the nanoseconds all of proc's threads have waited in
// the kernel's run queue. Threads that end during a window take their
// share with them; the Go runtime keeps its threads.
func runQueueWait(proc procfs.Proc) (uint64, bool) {
	threads, err := procfs.AllThreads(proc.PID)
	if err != nil || len(threads) == 0 {
		return 0, false
	}
	var sum uint64
	for _, t := range threads {
		st, err := t.Schedstat()
		if err != nil {
			return 0, false
		}
		sum += st.WaitingNanoseconds
	}
	return sum, true
}

// watch samples CPU time of the server, the upstream and the generator at
// the window's edges.
type watch struct {
	procs []*watched
	done  chan struct{}
	span  time.Duration
}

// newWatch finds the processes and reads their resident memory; call it
// before the run opens its first connection.
func newWatch(p plan) *watch {
	w := &watch{done: make(chan struct{})}
	add := func(label string, proc procfs.Proc, err error) {
		if err == nil {
			pw := &watched{label: label, proc: proc}
			if st, err := proc.NewStatus(); err == nil {
				pw.rss0 = st.VmRSS
			}
			w.procs = append(w.procs, pw)
		}
	}
	if p.serverPID > 0 {
		proc, err := procfs.NewProc(p.serverPID)
		add("server", proc, err)
	}
	if p.upstreamPID > 0 && p.upstreamPID != p.serverPID {
		proc, err := procfs.NewProc(p.upstreamPID)
		add("upstream", proc, err)
	}
	self, err := procfs.Self()
	add("loadgen", self, err)
	return w
}

// start samples CPU time at from and to.
func (w *watch) start(from, to time.Time) {
	w.span = to.Sub(from)
	go func() {
		defer close(w.done)
		time.Sleep(time.Until(from))
		for _, pw := range w.procs {
			if st, err := pw.proc.Stat(); err == nil {
				pw.cpu0, pw.ok = st.CPUTime(), true
			}
			pw.rq0, pw.rqOK = runQueueWait(pw.proc)
		}
		time.Sleep(time.Until(to))
		for _, pw := range w.procs {
			if st, err := pw.proc.Stat(); err == nil && pw.ok {
				pw.cpu1 = st.CPUTime()
			} else {
				pw.ok = false
			}
			if rq, ok := runQueueWait(pw.proc); ok && pw.rqOK {
				pw.rq1 = rq
			} else {
				pw.rqOK = false
			}
		}
	}()
}

// finish waits for the end-of-window sample and reads peak RSS.
func (w *watch) finish() []ProcUsage {
	<-w.done
	out := make([]ProcUsage, 0, len(w.procs))
	for _, pw := range w.procs {
		u := ProcUsage{Label: pw.label, PID: pw.proc.PID, CPUPercent: -1, StartRSSBytes: pw.rss0, RunQueueWaitPercent: -1}
		if pw.ok && w.span > 0 {
			u.CPUPercent = 100 * (pw.cpu1 - pw.cpu0) / w.span.Seconds()
		}
		if pw.rqOK && w.span > 0 {
			u.RunQueueWaitPercent = 100 * float64(pw.rq1-pw.rq0) / float64(w.span.Nanoseconds())
		}
		if st, err := pw.proc.NewStatus(); err == nil {
			u.PeakRSSBytes = st.VmHWM
		}
		out = append(out, u)
	}
	return out
}

package store

import (
	"fmt"
	"math"
	"time"
)

// The checks below are shared by every backend so that all of them refuse the
// same arguments with the same sentinel (ErrInvalid) before touching state.

func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("kv: empty key: %w", ErrInvalid)
	}
	return nil
}

func checkEnqueue(queue string, j Job) error {
	switch {
	case queue == "":
		return fmt.Errorf("enqueue: empty queue name: %w", ErrInvalid)
	case j.ID == "":
		return fmt.Errorf("enqueue to %s: empty job id: %w", queue, ErrInvalid)
	}
	return nil
}

func checkClaim(queue string, lease time.Duration) error {
	switch {
	case queue == "":
		return fmt.Errorf("claim: empty queue name: %w", ErrInvalid)
	case lease <= 0:
		return fmt.Errorf("claim from %s: lease %v is not positive: %w", queue, lease, ErrInvalid)
	}
	return nil
}

func checkComplete(state JobState) error {
	if state != JobSucceeded && state != JobFailed {
		return fmt.Errorf("complete: state %q is not %q or %q: %w", state, JobSucceeded, JobFailed, ErrInvalid)
	}
	return nil
}

// maxTolerance caps burst × interval so that absurd limits cannot overflow
// time.Duration arithmetic.
const maxTolerance = 100 * 365 * 24 * time.Hour

// limitParams turns a rate and burst into GCRA's emission interval and burst
// tolerance (how far ahead of now the theoretical arrival time may run).
// A burst below 1 is treated as 1: a limiter that admits nothing is a kill
// switch, which has its own mechanism.
func limitParams(ratePerSec float64, burst int) (interval, tolerance time.Duration, err error) {
	if math.IsNaN(ratePerSec) || math.IsInf(ratePerSec, 0) || ratePerSec <= 0 {
		return 0, 0, fmt.Errorf("rate limit: rate %v per second is not a positive number: %w", ratePerSec, ErrInvalid)
	}
	burst = max(burst, 1)
	interval = min(max(time.Duration(float64(time.Second)/ratePerSec), 1), maxTolerance)
	tol := float64(interval) * float64(burst)
	if tol > float64(maxTolerance) {
		return interval, maxTolerance, nil
	}
	return interval, time.Duration(tol), nil
}

package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/internal/store"
)

// ErrBadUsage wraps every problem reading a usage file.
var ErrBadUsage = errors.New("audit: bad usage record")

// MaxUsageLine bounds one line of a usage file.
const MaxUsageLine = 64 << 10

// Records is a store.Usage over records held in memory (a usage file).
type Records []store.UsageRecord

var _ store.Usage = Records(nil)

// AppendUsage is not supported: Records is read-only.
func (Records) AppendUsage(context.Context, []store.UsageRecord) error {
	return errors.New("audit: usage file is read-only")
}

// ScanUsage calls fn for every record in [from, to) in time order.
func (rs Records) ScanUsage(ctx context.Context, from, to time.Time, fn func(store.UsageRecord) error) error {
	for _, r := range rs {
		if r.Time.Before(from) || !r.Time.Before(to) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// ReadUsage reads JSON Lines of store.UsageRecord (field names as the
// embedded store writes them, any case; blank lines skipped) and returns
// them in time order. Errors name the line, never its content.
func ReadUsage(r io.Reader) (Records, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxUsageLine)
	var out Records
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec store.UsageRecord
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("%w: line %d: not a usage record (%s)", ErrBadUsage, line, jsonProblem(err))
		}
		if rec.Time.IsZero() || rec.Integration == "" {
			return nil, fmt.Errorf("%w: line %d: Time and Integration are required", ErrBadUsage, line)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: after line %d: %w", ErrBadUsage, line, err)
	}
	slices.SortStableFunc(out, func(a, b store.UsageRecord) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// jsonProblem describes a decode error without quoting the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s has the wrong type", te.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	}
	return "unknown field or bad value"
}

// WriteUsage writes records as JSON Lines, the format ReadUsage reads.
func WriteUsage(w io.Writer, recs []store.UsageRecord) error {
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

package observe

import "net/http"

// StatusWriter notes the status and body bytes a caller was sent, for the
// request record. It keeps streaming responses streaming (Flush) and lets
// http.ResponseController reach Hijack and deadlines (Unwrap).
type StatusWriter struct {
	http.ResponseWriter
	Status int
	Bytes  int64
}

func (w *StatusWriter) WriteHeader(code int) {
	// A 1xx (other than 101) is not the answer: the final status follows.
	if w.Status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.Bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush through to the underlying writer.
func (w *StatusWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

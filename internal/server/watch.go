package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchFile signals reloads when the config file changes. It watches the
// directory, not the file, so editors that replace the file (write to a
// temp file and rename) and Kubernetes ConfigMap symlink swaps are seen.
// Bursts of events are coalesced over a short debounce.
func watchFile(ctx context.Context, path string, out chan<- struct{}, log *slog.Logger) (stop func()) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("config file watch unavailable; reload with SIGHUP", "cause", err)
		return func() {}
	}
	dir := filepath.Dir(path)
	if err := w.Add(dir); err != nil {
		log.Warn("config file watch unavailable; reload with SIGHUP", "cause", err)
		w.Close()
		return func() {}
	}
	base := filepath.Base(path)
	go func() {
		var timer *time.Timer
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Base(ev.Name) != base && filepath.Base(ev.Name) != "..data" {
					continue
				}
				if timer != nil {
					timer.Stop()
				}
				timer = time.AfterFunc(200*time.Millisecond, func() {
					select {
					case out <- struct{}{}:
					default:
					}
				})
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config file watch error", "cause", err)
			}
		}
	}()
	return func() { w.Close() }
}

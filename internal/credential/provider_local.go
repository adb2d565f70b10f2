package credential

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// maxSecretBytes bounds what a provider may hand us (PEM keys included).
const maxSecretBytes = 1 << 20

// envProvider reads env:NAME. A variable that is unset or empty is
// ErrNotFound. The process environment only changes if the process changes
// it, so env: secrets rotate with a restart or a file: reference instead.
type envProvider struct{}

func (envProvider) fetch(_ context.Context, name string) (Secret, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return Secret{}, fmt.Errorf("%w: environment variable %s is not set", ErrNotFound, name)
	}
	if v == "" {
		return Secret{}, fmt.Errorf("%w: environment variable %s is empty", ErrNotFound, name)
	}
	return Secret{Value: secret.New(v)}, nil
}

// fileDebounce is how long after a change event a file is re-read, so that
// a writer that truncates and then writes is read once, complete.
const fileDebounce = 100 * time.Millisecond

// fileProvider reads file:PATH (relative paths are relative to the working
// directory). Trailing CR/LF is removed, as editors and `echo` add one. The
// file's directory is watched so a change is picked up at once rather than
// at the end of the TTL; if watching fails the TTL alone applies.
type fileProvider struct {
	r *Resolver
	w *fsnotify.Watcher

	mu      sync.Mutex
	watched map[string]bool
	timers  map[string]*time.Timer
}

func newFileProvider(r *Resolver) *fileProvider {
	p := &fileProvider{r: r, watched: map[string]bool{}, timers: map[string]*time.Timer{}}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		r.log.Warn("cannot watch secret files; changes are seen when the TTL ends", logError, err.Error())
		return p
	}
	p.w = w
	r.wg.Add(1) // r.mu is held by providerFor, and r is not closed
	go p.loop()
	return p
}

func (p *fileProvider) fetch(_ context.Context, target string) (Secret, error) {
	path := filepath.Clean(target)
	p.watch(filepath.Dir(path))
	f, err := os.Open(path)
	if err != nil {
		return Secret{}, classifyFileErr(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Secret{}, classifyFileErr(err)
	}
	if fi.IsDir() {
		return Secret{}, fmt.Errorf("%w: %s is a directory", ErrBadReference, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return Secret{}, fmt.Errorf("%w: reading %s: %w", ErrUnavailable, path, err)
	}
	if len(b) > maxSecretBytes {
		return Secret{}, fmt.Errorf("%w: %s is larger than %d bytes", ErrMalformed, path, maxSecretBytes)
	}
	v := strings.TrimRight(string(b), "\r\n")
	return Secret{Value: secret.New(v), Created: fi.ModTime()}, nil
}

func classifyFileErr(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", ErrPermissionDenied, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (p *fileProvider) watch(dir string) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watched[dir] {
		return
	}
	if err := p.w.Add(dir); err != nil {
		p.r.log.Warn("cannot watch secret directory; changes are seen when the TTL ends", "dir", dir, logError, err.Error())
		return
	}
	p.watched[dir] = true
}

func (p *fileProvider) loop() {
	defer p.r.wg.Done()
	for {
		select {
		case ev, ok := <-p.w.Events:
			if !ok {
				return
			}
			p.changed(filepath.Dir(ev.Name))
		case err, ok := <-p.w.Errors:
			if !ok {
				return
			}
			p.r.log.Warn("secret file watcher error", logError, err.Error())
		}
	}
}

// changed schedules a re-read of the files in dir, once per burst of events.
func (p *fileProvider) changed(dir string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.timers[dir]; ok {
		t.Reset(fileDebounce)
		return
	}
	p.timers[dir] = time.AfterFunc(fileDebounce, func() {
		p.r.reread(func(target string) bool { return filepath.Dir(filepath.Clean(target)) == dir })
	})
}

func (p *fileProvider) close() {
	p.mu.Lock()
	for _, t := range p.timers {
		t.Stop()
	}
	p.mu.Unlock()
	if p.w != nil {
		_ = p.w.Close()
	}
}

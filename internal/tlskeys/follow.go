package tlskeys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// DefaultPoll is how often a Follower looks at its files.
const DefaultPoll = 200 * time.Millisecond

// maxLine bounds a key log line (a partial line longer than that is
// dropped: no NSS line is).
const maxLine = 1024

// Follower follows key log files (SSLKEYLOGFILE) while applications append
// to them, like tail -F: a file that does not exist yet is waited for, a
// truncated file is read again from its start, and a file replaced under
// its name (rotation) is read to its end and then the new one from its
// start. Every complete line is parsed; lines that are not NSS key log
// lines are counted and skipped.
type Follower struct {
	paths []string
	poll  time.Duration
	log   *slog.Logger
	files []*followed
}

// drainFor is how long a file that was renamed or removed under its name
// is still read: the application may go on writing to it until it reopens
// the name.
const drainFor = 5 * time.Second

// followed is one path's reading state: the file open under its name,
// and the files that were under it before (still read for drainFor).
type followed struct {
	path    string
	cur     *reader
	old     []*reader
	waiting bool // logged that the file is missing
	bad     int64
}

// reader reads one open file.
type reader struct {
	f        *os.File
	dev, ino uint64
	off      int64
	partial  []byte
	line     int       // lines read
	until    time.Time // for a retired file: when to stop reading it
}

// NewFollower returns a Follower of the files (poll 0: DefaultPoll).
func NewFollower(paths []string, poll time.Duration, log *slog.Logger) *Follower {
	if poll <= 0 {
		poll = DefaultPoll
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fl := &Follower{paths: paths, poll: poll, log: log}
	for _, p := range paths {
		fl.files = append(fl.files, &followed{path: p})
	}
	return fl
}

// Run follows the files until ctx is done, calling emit for each line, and
// returns nil then. Lines already in a file when it is first opened count.
func (fl *Follower) Run(ctx context.Context, emit func(Secret)) error {
	t := time.NewTicker(fl.poll)
	defer t.Stop()
	defer func() {
		for _, f := range fl.files {
			f.closeAll()
		}
	}()
	for {
		for _, f := range fl.files {
			fl.step(f, emit)
		}
		select {
		case <-ctx.Done():
			for _, f := range fl.files { // what was written until now
				fl.step(f, emit)
			}
			return nil
		case <-t.C:
		}
	}
}

// Bad returns the number of lines skipped because they were no key log lines.
func (fl *Follower) Bad() int64 {
	var n int64
	for _, f := range fl.files {
		n += f.bad
	}
	return n
}

func (f *followed) closeAll() {
	if f.cur != nil {
		f.cur.f.Close()
		f.cur = nil
	}
	for _, r := range f.old {
		r.f.Close()
	}
	f.old = nil
}

// retire moves the current file to the ones read until drainFor passed.
func (f *followed) retire() {
	if f.cur != nil {
		f.cur.until = time.Now().Add(drainFor)
		f.old = append(f.old, f.cur)
		f.cur = nil
	}
}

// step reads what is new under one path.
func (fl *Follower) step(f *followed, emit func(Secret)) {
	// Files that were under the name before: read to their end, then
	// closed once drainFor is over.
	keep := f.old[:0]
	for _, r := range f.old {
		fl.read(f, r, emit)
		if time.Now().Before(r.until) {
			keep = append(keep, r)
		} else {
			r.f.Close()
		}
	}
	f.old = keep

	st, err := os.Stat(f.path)
	if err != nil {
		if f.cur != nil {
			fl.read(f, f.cur, emit)
			fl.log.Info("tls keys: key log file removed; waiting for a new one", "path", f.path)
			f.retire()
		}
		if !f.waiting {
			f.waiting = true
			if errors.Is(err, fs.ErrNotExist) {
				fl.log.Info("tls keys: waiting for the key log file", "path", f.path)
			} else {
				fl.log.Warn("tls keys: key log file not readable; retrying", "path", f.path, "err", err)
			}
		}
		return
	}
	if f.cur != nil {
		if dev, ino := fileID(st); dev != f.cur.dev || ino != f.cur.ino {
			fl.read(f, f.cur, emit)
			fl.log.Info("tls keys: key log file replaced (rotated); following the new one", "path", f.path)
			f.retire()
		}
	}
	if f.cur == nil {
		file, err := os.Open(f.path)
		if err != nil {
			if !f.waiting {
				f.waiting = true
				fl.log.Warn("tls keys: key log file not readable; retrying", "path", f.path, "err", err)
			}
			return
		}
		fst, err := file.Stat()
		if err != nil {
			file.Close()
			return
		}
		r := &reader{f: file}
		r.dev, r.ino = fileID(fst)
		f.cur, f.waiting = r, false
		fl.log.Info("tls keys: following the key log file", "path", f.path)
	}
	// Truncated (its size is below what was read): from the start again.
	r := f.cur
	if fst, err := r.f.Stat(); err == nil && fst.Size() < r.off {
		fl.log.Info("tls keys: key log file truncated; reading it again from its start", "path", f.path)
		if _, err := r.f.Seek(0, io.SeekStart); err == nil {
			r.off, r.partial, r.line = 0, r.partial[:0], 0
		}
	}
	fl.read(f, r, emit)
}

// read reads a file to its end, emitting the complete lines.
func (fl *Follower) read(f *followed, r *reader, emit func(Secret)) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.f.Read(buf)
		if n > 0 {
			r.off += int64(n)
			data := buf[:n]
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					r.partial = append(r.partial, data...)
					if len(r.partial) > maxLine {
						f.bad++
						r.partial = r.partial[:0] // resynchronised at the next newline
						fl.log.Warn("tls keys: over-long line in the key log file skipped", "path", f.path, "line", r.line+1)
					}
					break
				}
				line := string(data[:i])
				if len(r.partial) > 0 {
					line = string(r.partial) + line
					r.partial = r.partial[:0]
				}
				data = data[i+1:]
				r.line++
				s, ok, perr := ParseLine(line)
				if perr != nil {
					f.bad++
					fl.log.Warn("tls keys: line of the key log file skipped", "path", f.path, "line", r.line, "err", perr)
					continue
				}
				if ok {
					emit(s)
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fl.log.Warn("tls keys: reading the key log file", "path", f.path, "err", err)
			}
			return
		}
	}
}

func fileID(st os.FileInfo) (uint64, uint64) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Dev), sys.Ino
	}
	return 0, 0
}

// String describes the follower (for logs).
func (fl *Follower) String() string { return fmt.Sprintf("key log files %q", fl.paths) }

package conformance

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/echlab/echlab/lab/capture"
)

// cellRecorder is the WrapConn of the relay in front of a case's server:
// it records each accepted client connection into the current cell's
// Recorder, so that each cell gets a capture of its own flows. A
// connection stays with the Recorder it was accepted under.
type cellRecorder struct {
	mu  sync.Mutex
	cur *capture.Recorder
}

func newCellRecorder() *cellRecorder { return &cellRecorder{cur: capture.NewRecorder()} }

// wrap records c into the current cell's Recorder.
func (r *cellRecorder) wrap(c net.Conn) net.Conn {
	r.mu.Lock()
	rec := r.cur
	r.mu.Unlock()
	return rec.WrapConn(c)
}

// next ends the current cell: it returns the cell's Recorder and starts a
// fresh one for the next cell.
func (r *cellRecorder) next() *capture.Recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	done := r.cur
	r.cur = capture.NewRecorder()
	return done
}

// writeCapture writes rec as outDir/CaptureDir/name and returns the
// file's path relative to outDir.
func writeCapture(outDir, name string, rec *capture.Recorder) (string, error) {
	rel := filepath.Join(CaptureDir, name)
	if err := os.MkdirAll(filepath.Join(outDir, CaptureDir), 0o755); err != nil {
		return "", fmt.Errorf("conformance: %w", err)
	}
	f, err := os.Create(filepath.Join(outDir, rel))
	if err != nil {
		return "", fmt.Errorf("conformance: %w", err)
	}
	err = rec.WritePcapng(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("conformance: capture %s: %w", rel, err)
	}
	return rel, nil
}

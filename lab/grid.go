package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/lab/capture"
)

// ErrUnknownGridRow is RunGrid's error for a row name not in GridRows.
var ErrUnknownGridRow = errors.New("lab: unknown grid row")

// Files of a grid run, beside the capture, keylog and logs of Run.
const (
	FileGridJSON  = "grid.json"
	FileGridMD    = "grid.md"
	FileAdversary = "adversary.jsonl"
)

// GridColumns are the default grid's adversary columns
// (adversary.DefaultGrid): every policy kind at least once, aimed at the
// lab's names.
var GridColumns = adversary.DefaultGrid

// GridConfig configures RunGrid. The zero value runs every client row
// against the control column and every column of GridColumns.
type GridConfig struct {
	OutDir  string // "" means "out"
	KeysDir string // "" means OutDir/keys
	PKIDir  string // "" means OutDir/pki

	// Columns are the adversary's policy columns, each one or more
	// policies acting together; the control column (no policy) is always
	// run first. Nil means GridColumns.
	Columns [][]adversary.Policy
	// Rows names the client rows to run (see GridRows); nil means all.
	Rows []string

	// Progress receives one line per finished cell; nil prints nothing.
	Progress io.Writer
	// CellTimeout bounds one cell; 0 means 10 s. The clients' connect and
	// handshake timeouts are 2 s each, so a black-holed connection shows
	// as a timeout well inside it.
	CellTimeout time.Duration
}

func (c GridConfig) populate() (GridConfig, error) {
	if c.OutDir == "" {
		c.OutDir = "out"
	}
	if c.CellTimeout <= 0 {
		c.CellTimeout = 10 * time.Second
	}
	if c.Columns == nil {
		for _, spec := range GridColumns {
			col, err := adversary.Parse(spec)
			if err != nil {
				return c, fmt.Errorf("lab: default grid: %w", err)
			}
			c.Columns = append(c.Columns, col)
		}
	}
	// The control column first, once.
	cols := [][]adversary.Policy{nil}
	for _, col := range c.Columns {
		if len(col) > 0 {
			cols = append(cols, col)
		}
	}
	c.Columns = cols
	for _, name := range c.Rows {
		if !slices.ContainsFunc(GridRows, func(r GridRow) bool { return r.Name == name }) {
			return c, fmt.Errorf("%w %q (rows: %s)", ErrUnknownGridRow, name, GridRowNames())
		}
	}
	return c, nil
}

// GridResult is a grid run: every cell, and where it was written.
type GridResult struct {
	OutDir  string     `json:"out_dir"`
	Rows    []GridRow  `json:"rows"`
	Columns []string   `json:"columns"` // policy specs; "none" is the control
	Cells   []GridCell `json:"cells"`   // row-major: Rows × Columns
	// Deviations counts the cells whose outcome is not one RFC 9849 /
	// RFC 9848 expect (GridCell.AsExpected false).
	Deviations int `json:"deviations"`
}

// Cell returns the cell of a row and column, or nil.
func (g *GridResult) Cell(row, column string) *GridCell {
	for i := range g.Cells {
		if g.Cells[i].Row == row && g.Cells[i].Column == column {
			return &g.Cells[i]
		}
	}
	return nil
}

// Outcomes of a grid cell.
const (
	GridECH        = "ech"         // connected, ECH accepted: the name hidden in the handshake
	GridECHRetried = "ech-retried" // connected with ECH after a retry with the server's retry configs
	GridClear      = "clear"       // connected without ECH: the true name in the clear SNI (fail-open for an ECH client)
	GridGREASE     = "grease"      // connected with a GREASE extension: the name in the clear, by design
	GridFailed     = "failed"      // gave up (failed closed): ErrorClass says at which step
)

// GridCell is one client row against one adversary column.
type GridCell struct {
	Row    string `json:"row"`
	Column string `json:"column"`

	Outcome    string        `json:"outcome"`
	ErrorClass string        `json:"error_class,omitempty"` // client.Class, or the crypto/tls row's own
	Error      string        `json:"error,omitempty"`
	Duration   time.Duration `json:"duration_ns"` // until connected, or until the client gave up
	// Leaks are where the adversary saw the true name in the clear: "sni"
	// (a ClientHello's server_name) and "dns" (a Do53 query).
	Leaks []string `json:"leaks,omitempty"`

	// Expected is what the RFCs have a compliant client of this kind do
	// against this column, Why the section saying so; AsExpected whether
	// the outcome is one of Expected. Expected is empty (and AsExpected
	// true) where the RFCs say nothing a cell can be judged by.
	Expected   []string `json:"expected,omitempty"`
	Why        string   `json:"why,omitempty"`
	AsExpected bool     `json:"as_expected"`

	// What the adversary matched (policy → count) and did, in order.
	Counts    map[string]int       `json:"counts,omitempty"`
	Decisions []adversary.Decision `json:"-"`
	Saw       string               `json:"saw,omitempty"` // one line: what it saw and did
}

// gridFilter hands each relay's questions to the current cell's
// adversary; between cells (and in the control column) it passes all.
type gridFilter struct {
	cur atomic.Pointer[adversary.Adversary]
}

func (g *gridFilter) Stream(f capture.Flow, first []byte) capture.Verdict {
	if a := g.cur.Load(); a != nil {
		return a.Stream(f, first)
	}
	return capture.Pass
}

func (g *gridFilter) Datagram(f capture.Flow, toServer bool, b []byte) ([]byte, capture.Verdict) {
	if a := g.cur.Load(); a != nil {
		return a.Datagram(f, toServer, b)
	}
	return b, capture.Pass
}

// RunGrid starts the embedded lab with an adversary in the observer's
// place (the recording relays, which now act as well as watch), runs each
// client row against each policy column, one cell at a time, and writes
// grid.json, grid.md, adversary.jsonl and the capture to cfg.OutDir, then
// what echlab compare --adversary-log reads from them: flows.jsonl,
// flows.csv and compare.md.
func RunGrid(ctx context.Context, cfg GridConfig) (*GridResult, error) {
	cfg, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	out, err := openOutputs(cfg.OutDir)
	if err != nil {
		return nil, err
	}
	defer out.close()
	rows := GridRows
	if cfg.Rows != nil {
		rows = slices.DeleteFunc(slices.Clone(GridRows), func(r GridRow) bool { return !slices.Contains(cfg.Rows, r.Name) })
	}
	res := &GridResult{OutDir: cfg.OutDir, Rows: rows}
	for _, col := range cfg.Columns {
		res.Columns = append(res.Columns, columnName(col))
	}
	prog := &Progress{W: cfg.Progress, Total: len(rows) * len(cfg.Columns)}

	filter := &gridFilter{}
	runCfg := RunConfig{OutDir: cfg.OutDir, KeysDir: cfg.KeysDir, PKIDir: cfg.PKIDir,
		Capture: CaptureSynth, filter: filter}
	if runCfg, err = runCfg.populate(); err != nil {
		return nil, err
	}
	s, capt, err := startLab(runCfg, out, prog)
	if err != nil {
		return nil, err
	}
	prog.Phase("lab up with an adversary: %d client rows × %d columns", len(rows), len(cfg.Columns))
	advLog, err := os.Create(filepath.Join(cfg.OutDir, FileAdversary))
	if err != nil {
		s.close()
		capt.stop()
		return nil, fmt.Errorf("lab: %w", err)
	}
	for _, row := range rows {
		for ci, col := range cfg.Columns {
			if ctx.Err() != nil {
				break
			}
			a := adversary.New(col)
			filter.cur.Store(a)
			cell := s.runCell(ctx, cfg, row, col, a)
			filter.cur.Store(nil)
			cell.Column = res.Columns[ci]
			for _, d := range cell.Decisions {
				writeDecision(advLog, row.Name, cell.Column, d)
			}
			if !cell.AsExpected {
				res.Deviations++
			}
			res.Cells = append(res.Cells, cell)
			prog.cell(cell)
		}
	}
	stopErr := errors.Join(s.close(), capt.stop(), advLog.Close(), out.close())
	if err := writeGrid(cfg.OutDir, res); err != nil {
		return res, err
	}
	if stopErr == nil {
		prog.Phase("comparing the capture with the adversary's decisions")
		stopErr = compareGrid(cfg.OutDir, s)
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, stopErr
}

// columnName is a column's spec: its policies joined by "+", or "none".
func columnName(col []adversary.Policy) string {
	if len(col) == 0 {
		return "none"
	}
	return adversary.Join(col)
}

// cell prints the line of a finished grid cell: "!" marks a cell whose
// outcome the RFCs do not expect.
func (p *Progress) cell(c GridCell) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	mark := "✓"
	if !c.AsExpected {
		mark = "!"
	}
	width := len(fmt.Sprint(p.Total))
	fmt.Fprintf(p.W, "%s [%*d/%d] %-20s %-32s %s\n", mark, width, p.done, p.Total, c.Row, c.Column, cellText(c))
}

// ParseGridColumns reads echlab run --adversary's value: comma-separated
// columns, each one or more policies joined by "+" (adversary.ParseGrid);
// "none" is the control column (always run), "all" (alias "censor")
// GridColumns.
func ParseGridColumns(spec string) ([][]adversary.Policy, error) {
	cols, err := adversary.ParseGrid(spec)
	if err != nil {
		return nil, err
	}
	if cols == nil {
		cols = [][]adversary.Policy{}
	}
	return cols, nil
}

// writeDecision writes one line of adversary.jsonl: the decision's own
// JSON object with the cell's row and column first.
func writeDecision(w io.Writer, row, column string, d adversary.Decision) {
	b, err := json.Marshal(d)
	if err != nil || len(b) < 2 || b[0] != '{' {
		return
	}
	head, _ := json.Marshal(map[string]string{"row": row, "column": column})
	line := head
	if len(b) > 2 { // not {}
		line = append(append(head[:len(head)-1:len(head)-1], ','), b[1:]...)
	}
	w.Write(append(line, '\n')) //nolint:errcheck // checked at Close
}

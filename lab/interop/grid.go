package interop

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/lab/capture"
)

// Files of a browser grid run, in its output directory.
const (
	GridJSON = "grid-browsers.json"
	GridMD   = "grid-browsers.md"
)

// Do53FrontAddr is where the system resolver of the grid's namespace
// points (resolv.conf names no port: 53).
const Do53FrontAddr = "127.0.0.1:53"

// DefaultGridColumns are the browser grid's columns after the control
// column: the ones that answer "does the browser fall back to a cleartext
// SNI when ECH is blocked, when DoH is blocked, when the HTTPS record is
// stripped on Do53 but DoH works". The blocks reset (rst) rather than
// black-hole, so that a cell takes seconds, not the browser's timeout.
var DefaultGridColumns = []string{
	"block-ech rst",
	"block-ech-public " + PublicName + " rst",
	"strip-ech",
	"block-doh",
	"strip-ech+block-doh",
}

// GridConfig configures RunGrid. The zero value runs every row of
// GridRows against the control column and DefaultGridColumns.
type GridConfig struct {
	Dir string // output directory; "" means "interop-out"
	// Columns is the adversary's columns as for adversary.ParseGrid
	// ("none" is the control column, always run first); "" means
	// DefaultGridColumns.
	Columns string
	Rows    []string      // names from GridRows; nil means all
	Timeout time.Duration // bound of one browser run; 0 means 20 s
	// Progress receives one line per cell as it ends; nil discards.
	Progress io.Writer
}

// populate fills in the defaults, parses the columns and resolves the
// rows.
func (c GridConfig) populate() (GridConfig, [][]adversary.Policy, []GridRow, error) {
	if c.Dir == "" {
		c.Dir = "interop-out"
	}
	if c.Timeout <= 0 {
		c.Timeout = 20 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	spec := c.Columns
	if strings.TrimSpace(spec) == "" {
		spec = strings.Join(DefaultGridColumns, ",")
	}
	parsed, err := adversary.ParseGrid(spec)
	if err != nil {
		return c, nil, nil, err
	}
	cols := [][]adversary.Policy{nil}
	for _, col := range parsed {
		if len(col) > 0 {
			cols = append(cols, col)
		}
	}
	rows, err := gridRows(c.Rows)
	return c, cols, rows, err
}

// GridReport is a browser grid run: what grid-browsers.json holds.
type GridReport struct {
	Started  time.Time         `json:"started"`
	Rows     []GridRow         `json:"rows"`
	Columns  []string          `json:"columns"` // "none" is the control column
	Cells    []GridCell        `json:"cells"`   // column-major: each column's rows in order
	Versions map[string]string `json:"versions"`
	// Deviations counts the cells whose outcome is not one RFC 9849 has a
	// compliant client of the row's kind reach (GridCell.AsExpected false).
	Deviations int `json:"deviations"`
}

// Cell returns the cell of a row and column, or nil.
func (g *GridReport) Cell(row, column string) *GridCell {
	for i := range g.Cells {
		if g.Cells[i].Row == row && g.Cells[i].Column == column {
			return &g.Cells[i]
		}
	}
	return nil
}

// RunGrid starts the lab with an adversary in front of the ECH server
// (TCP and UDP), the resolver's DoH and its Do53 (UDP and TCP, reached
// through the namespace's system resolver: see UseResolvConf), and runs
// each row's browser on the ech case against each column, one cell at a
// time, each with a fresh adversary applying the column. It writes
// grid-browsers.json and grid-browsers.md to cfg.Dir. It must run in the
// namespace Reexec made.
func RunGrid(cfg GridConfig) (*GridReport, error) {
	cfg, cols, rows, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	if err := Isolated(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	obs := &capture.Observer{Filter: adversary.New(nil)}
	defer obs.Close()
	l, err := startLab(cfg.Dir, obs)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	front, err := StartDo53Front(Do53FrontAddr, l.Do53UDP, l.Do53TCP)
	if err != nil {
		return nil, err
	}
	defer front.Close()
	if err := UseResolvConf(cfg.Dir, "127.0.0.1"); err != nil {
		return nil, err
	}
	rep := &GridReport{Started: time.Now().UTC(), Rows: rows, Versions: map[string]string{}}
	for _, r := range rows {
		if _, ok := rep.Versions[r.Browser]; !ok {
			rep.Versions[r.Browser] = browsers[r.Browser].version(cfg.Dir)
		}
	}
	for _, col := range cols {
		rep.Columns = append(rep.Columns, adversary.Join(col))
		for _, r := range rows {
			c, err := l.runCell(obs, r, col, cfg.Timeout)
			if err != nil {
				return rep, err
			}
			rep.Cells = append(rep.Cells, c)
			if !c.AsExpected {
				rep.Deviations++
			}
			fmt.Fprintln(cfg.Progress, c.progressLine())
		}
	}
	return rep, rep.write(cfg.Dir)
}

// cellDir is a cell's folder, relative to the output directory.
func cellDir(row, column string) string {
	slug := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, strings.ToLower(column))
	return filepath.Join("grid", strings.ReplaceAll(row, "/", "-"), slug)
}

// gridRows resolves row names (nil: all).
func gridRows(names []string) ([]GridRow, error) {
	if len(names) == 0 {
		return slices.Clone(GridRows), nil
	}
	var out []GridRow
	for _, n := range names {
		i := slices.IndexFunc(GridRows, func(r GridRow) bool { return r.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("%w: unknown grid row %q (rows: %s)", ErrBrowser, n, strings.Join(GridRowNames(), ", "))
		}
		out = append(out, GridRows[i])
	}
	return out, nil
}

package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/echlab/echlab/lab/observe"
)

// FileCompareMD is the grid's compare report: echlab compare's Markdown on
// the grid's capture with its adversary log.
const FileCompareMD = "compare.md"

// compareGrid runs Compare on a grid's capture with every key set, the
// keylog and the adversary's decision log, as echlab compare
// --adversary-log would, and writes flows.jsonl, flows.csv and
// compare.md: each flow marked with what the adversary did to it, and
// the section on what it did per policy. A scenarios.jsonl in the folder
// is not the grid's (an earlier echlab run's): it is not read.
func compareGrid(dir string, s *stack) error {
	logPath := filepath.Join(dir, FileAdversary)
	f, err := os.Open(logPath)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	adv, err := observe.ReadAdversaryLog(f, FileAdversary)
	f.Close()
	if err != nil {
		return err
	}
	rep, err := compareDir(dir, observe.CompareOptions{Keys: s.allKeys(), ESNIKeys: s.esniKeySets(), Adversary: adv})
	if err != nil {
		return err
	}
	var errs []error
	for _, w := range []struct {
		name  string
		write func(io.Writer, *observe.Report) error
	}{{FileFlowsJSONL, observe.WriteJSON}, {FileFlowsCSV, observe.WriteCSV}, {FileCompareMD, observe.WriteMarkdown}} {
		errs = append(errs, writeFile(filepath.Join(dir, w.name), func(out io.Writer) error { return w.write(out, rep) }))
	}
	return errors.Join(errs...)
}

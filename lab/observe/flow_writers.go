package observe

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// FlowJSON writes flows as JSON lines, one flow at a time: what WriteJSON
// writes for a whole report, for CompareOptions.OnFlow.
type FlowJSON struct{ enc *json.Encoder }

// NewFlowJSON returns a FlowJSON writing to w.
func NewFlowJSON(w io.Writer) *FlowJSON { return &FlowJSON{enc: json.NewEncoder(w)} }

// Write writes one flow as a line.
func (j *FlowJSON) Write(f *Flow) error {
	if err := j.enc.Encode(f); err != nil {
		return fmt.Errorf("lab: writing JSON: %w", err)
	}
	return nil
}

// FlowCSV writes flows as CSV rows, one flow at a time, after the header:
// what WriteCSV writes for a whole report, for CompareOptions.OnFlow.
type FlowCSV struct {
	cw     *csv.Writer
	header bool // written
	row    []string
}

// NewFlowCSV returns a FlowCSV writing to w. Call Flush at the end.
func NewFlowCSV(w io.Writer) *FlowCSV { return &FlowCSV{cw: csv.NewWriter(w)} }

// Write writes the header, the first time, then the flow's row.
func (c *FlowCSV) Write(f *Flow) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.row = append(c.row[:0], strconv.Itoa(f.ID), f.Scenario, f.Start.UTC().Format(time.RFC3339Nano), f.Client.String(), f.Server.String(),
		f.Transport, f.Service, f.SNI, strings.Join(f.ALPN, ";"),
		f.ECH, configID(f), hexOrEmpty(f.ECHKDF), hexOrEmpty(f.ECHAEAD), intOrEmpty(f.ECHEncLen), intOrEmpty(f.ECHPayloadLen),
		f.InnerSNI, strings.Join(f.InnerALPN, ";"), accepted(f), strconv.FormatBool(f.ECHInnerInClear), strconv.FormatBool(f.HRR),
		VersionName(f.ServerVersion), CipherName(f.ServerCipher), GroupName(f.ServerGroup),
		intOrEmpty(f.ClientHelloLen), intOrEmpty(f.RecordLen), f.JA4, strconv.FormatBool(f.Keylog),
		dnsSummary(f.DNS), strings.Join(f.Warnings, "; "))
	c.row = append(c.row, csvESNI(f)...)
	c.row = append(c.row, f.AdversaryAction, f.AdversaryPolicy, f.AdversaryColumn, f.AdversaryRow, f.AdversaryDetail)
	if err := c.cw.Write(c.row); err != nil {
		return fmt.Errorf("lab: writing CSV: %w", err)
	}
	return nil
}

func (c *FlowCSV) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	if err := c.cw.Write(csvHeader); err != nil {
		return fmt.Errorf("lab: writing CSV: %w", err)
	}
	return nil
}

// Flush writes the header if no flow came, and whatever is buffered.
func (c *FlowCSV) Flush() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.cw.Flush()
	return c.cw.Error()
}

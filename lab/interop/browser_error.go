package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// browserError returns the browser's own error for a cell whose page did
// not load: Chromium's net error of the page's request (chromiumError),
// Firefox's nsresult of its last failed HTTP transaction (firefoxError);
// "" when the log says none.
func browserError(row, dir string) string {
	if strings.HasPrefix(row, "firefox") {
		return firefoxError(dir)
	}
	return chromiumError(dir)
}

// netLog is the part of a Chromium NetLog file chromiumError reads.
type netLog struct {
	Constants struct {
		EventTypes map[string]int `json:"logEventTypes"`
		NetError   map[string]int `json:"netError"`
	} `json:"constants"`
	Events []struct {
		Source struct {
			ID int `json:"id"`
		} `json:"source"`
		Type   int `json:"type"`
		Phase  int `json:"phase"`
		Params struct {
			URL      string `json:"url"`
			NetError int    `json:"net_error"`
		} `json:"params"`
	} `json:"events"`
}

// netLogPhaseEnd is the phase of an event that ends (NetLogEventPhase::END).
const netLogPhaseEnd = 2

// chromiumError reads netlog.json in dir: the net error (ERR_…) that ended
// the last request for the page (a REQUEST_ALIVE end event of a request
// whose URL names SecretName). A NetLog cut short by the timeout is read
// as far as it goes.
func chromiumError(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "netlog.json"))
	if err != nil {
		return ""
	}
	var nl netLog
	if json.Unmarshal(b, &nl) != nil {
		// A NetLog cut short ends in "…},\n" without the closing "]}".
		if json.Unmarshal(append(bytes.TrimRight(bytes.TrimSpace(b), ","), "]}"...), &nl) != nil {
			return ""
		}
	}
	alive, ok := nl.Constants.EventTypes["REQUEST_ALIVE"]
	if !ok {
		return ""
	}
	urls := map[int]string{}
	last := 0
	for _, e := range nl.Events {
		if e.Params.URL != "" {
			urls[e.Source.ID] = e.Params.URL
		}
		if e.Type == alive && e.Phase == netLogPhaseEnd && e.Params.NetError != 0 && strings.Contains(urls[e.Source.ID], "//"+SecretName+":") {
			last = e.Params.NetError
		}
	}
	if last == 0 {
		return ""
	}
	for name, code := range nl.Constants.NetError {
		if code == last {
			return name
		}
	}
	return fmt.Sprintf("net error %d", last)
}

// MOZ_LOG lines firefoxError reads (nsHttp at level 4): a transaction's
// start, its request's Host header (the lines after the start), its end,
// and the note that the end was ECH failing.
var (
	mozTransactionInit  = regexp.MustCompile(`nsHttpTransaction::Init \[this=([0-9a-fx]+) `)
	mozTransactionClose = regexp.MustCompile(`nsHttpTransaction::Close \[this=([0-9a-fx]+) reason=([0-9a-fx]+)\]`)
	mozHost             = "  Host: " + SecretName + ":"
	mozECHFailed        = "Got SSL_ERROR_ECH_FAILED"
)

// nsresults are the names of the nsresult codes a failed page load ends
// with here (xpcom/base/ErrorList.py, security/manager/ssl).
var nsresults = map[uint32]string{
	0x804b0002: "NS_BINDING_ABORTED",
	0x804b000d: "NS_ERROR_CONNECTION_REFUSED",
	0x804b000e: "NS_ERROR_NET_TIMEOUT",
	0x804b0014: "NS_ERROR_NET_RESET",
	0x804b001e: "NS_ERROR_UNKNOWN_HOST",
	0x804b0047: "NS_ERROR_NET_INTERRUPT",
	0x804b0057: "NS_ERROR_NET_INADEQUATE_SECURITY",
	0x80004005: "NS_ERROR_FAILURE",
}

// firefoxError reads the parent process's MOZ_LOG in dir (moz.log.moz_log)
// and returns the failure reason of the last HTTP transaction for the
// page (its request's Host is SecretName) by name when known (else hex),
// with "(SSL_ERROR_ECH_FAILED)" when Firefox logged that ECH failed; ""
// when none failed.
func firefoxError(dir string) string {
	f, err := os.Open(filepath.Join(dir, "moz.log.moz_log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	var last uint32
	cur, ours, echFailed := "", map[string]bool{}, false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := mozTransactionInit.FindStringSubmatch(line); m != nil {
			cur = m[1]
		}
		if cur != "" && strings.Contains(line, mozHost) {
			ours[cur] = true
		}
		echFailed = echFailed || strings.Contains(line, mozECHFailed)
		m := mozTransactionClose.FindStringSubmatch(line)
		if m == nil || !ours[m[1]] {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimPrefix(m[2], "0x"), 16, 32)
		if err == nil && n&0x80000000 != 0 && uint32(n) != 0x804b0002 {
			last = uint32(n)
		}
	}
	name, ok := nsresults[last]
	switch {
	case last == 0:
		return ""
	case !ok:
		name = fmt.Sprintf("nsresult 0x%08x", last)
	}
	if echFailed {
		name += " (SSL_ERROR_ECH_FAILED)"
	}
	return name
}

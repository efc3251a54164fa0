package interop

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFirefoxError reads a MOZ_LOG excerpt (lines as Firefox ESR 153 wrote
// them in the grid, block-ech-public): the page's transaction is reset
// and ECH failed, while a background transaction for another host fails
// later with another reason that must not be taken.
func TestFirefoxError(t *testing.T) {
	const log = `[Parent 1: Main Thread]: E/nsHttp nsHttpTransaction::Init [this=7fb520a6fa00 caps=401001]
[Parent 1: Main Thread]: E/nsHttp http request [
[Parent 1: Main Thread]: E/nsHttp   GET /cdn-cgi/trace HTTP/1.1
[Parent 1: Main Thread]: E/nsHttp   Host: secret.lab.test:38455
[Parent 1: Socket Thread]: D/nsHttp nsHttpTransaction::Close [this=7fb520a6fa00 reason=804b0014]
[Parent 1: Socket Thread]: D/nsHttp  Got SSL_ERROR_ECH_FAILED, try other records
[Parent 1: Main Thread]: E/nsHttp nsHttpTransaction::Init [this=7fb520a72200 caps=1200911]
[Parent 1: Main Thread]: E/nsHttp   Host: firefox.settings.services.mozilla.com
[Parent 1: Socket Thread]: D/nsHttp nsHttpTransaction::Close [this=7fb520a72200 reason=804b001e]
`
	for _, tc := range []struct{ log, want string }{
		{log, "NS_ERROR_NET_RESET (SSL_ERROR_ECH_FAILED)"},
		{"[Parent 1: Main Thread]: E/nsHttp nsHttpTransaction::Init [this=ab caps=1]\n  Host: secret.lab.test:1\nnsHttpTransaction::Close [this=ab reason=804b001e]\n", "NS_ERROR_UNKNOWN_HOST"},
		{"nsHttpTransaction::Init [this=ab caps=1]\n  Host: secret.lab.test:1\nnsHttpTransaction::Close [this=ab reason=0]\n", ""},
		{"nsHttpTransaction::Init [this=ab caps=1]\n  Host: secret.lab.test:1\nnsHttpTransaction::Close [this=ab reason=805a1fff]\n", "nsresult 0x805a1fff"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "moz.log.moz_log"), []byte(tc.log), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := firefoxError(dir); got != tc.want {
			t.Errorf("firefoxError = %q, want %q\nlog:\n%s", got, tc.want, tc.log)
		}
	}
	if got := firefoxError(t.TempDir()); got != "" {
		t.Errorf("no log: %q", got)
	}
}

// TestChromiumError reads a NetLog shaped like Chromium 156's: the page's
// request (its URL names secret.lab.test) ends in ERR_CONNECTION_RESET; a
// background request's error and the page's socket events are not taken.
// A NetLog cut short (no closing "]}") is read too.
func TestChromiumError(t *testing.T) {
	const head = `{"constants":{"logEventTypes":{"REQUEST_ALIVE":2,"SSL_CONNECT":3,"URL_REQUEST_START_JOB":4},` +
		`"netError":{"ERR_CONNECTION_RESET":-101,"ERR_NAME_NOT_RESOLVED":-105}},"events":[
{"source":{"id":7,"type":1},"type":4,"phase":1,"params":{"url":"https://secret.lab.test:4433/cdn-cgi/trace"}},
{"source":{"id":8,"type":1},"type":4,"phase":1,"params":{"url":"https://update.googleapis.com/x"}},
{"source":{"id":9,"type":5},"type":3,"phase":2,"params":{"net_error":-105}},
{"source":{"id":7,"type":1},"type":2,"phase":2,"params":{"net_error":-101}},
{"source":{"id":8,"type":1},"type":2,"phase":2,"params":{"net_error":-105}},`
	for name, body := range map[string]string{"whole": head + "\n{}]}", "cut short": head + "\n"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "netlog.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := chromiumError(dir); got != "ERR_CONNECTION_RESET" {
			t.Errorf("%s: chromiumError = %q, want ERR_CONNECTION_RESET", name, got)
		}
	}
	if got := chromiumError(t.TempDir()); got != "" {
		t.Errorf("no NetLog: %q", got)
	}
}

package interop

import (
	"testing"

	"github.com/echlab/echlab/lab/observe"
	"github.com/echlab/echlab/server"
)

func id(v uint8) *uint8 { return &v }

func TestJudge(t *testing.T) {
	l := &Lab{StaleID: 10, CurrentID: 20}
	acc := func(inner, transport, alpn string, cid *uint8) server.ConnRecord {
		return server.ConnRecord{ECH: server.ECHAccepted, OuterSNI: PublicName, InnerSNI: inner, Transport: transport, ALPN: alpn, ConfigID: cid}
	}
	staleRej := server.ConnRecord{ECH: server.ECHRejected, OuterSNI: PublicName, ConfigID: id(10), RetryConfigs: true, Transport: "tcp", ALPN: "h2"}
	grease := server.ConnRecord{ECH: server.ECHGrease, OuterSNI: PlainName, ConfigID: id(77), RetryConfigs: true, Transport: "tcp", ALPN: "h2"}
	collided := grease
	collided.ECH, collided.ConfigID = server.ECHRejected, id(20)
	quicGrease := server.ConnRecord{ECH: server.ECHRejected, OuterSNI: PlainName, Transport: "quic", RetryConfigs: true, Error: "APPLICATION_ERROR (remote)"}
	failed := acc(SecretName, "tcp", "h2", id(20))
	failed.Error = "EOF"
	for _, tc := range []struct {
		name    string
		c       int
		recs    []server.ConnRecord
		want    string
		retries int
	}{
		{"ech", 0, []server.ConnRecord{acc(SecretName, "tcp", "h2", id(20))}, Pass, 0},
		{"ech old config", 0, []server.ConnRecord{acc(SecretName, "tcp", "h2", id(10))}, Fail, 0},
		{"ech http/1.1", 0, []server.ConnRecord{acc(SecretName, "tcp", "http/1.1", id(20))}, Fail, 0},
		{"ech failed handshake", 0, []server.ConnRecord{failed}, Fail, 0},
		{"ech none", 0, nil, Fail, 0},
		{"grease", 1, []server.ConnRecord{grease, quicGrease}, Pass, 0},
		{"grease id collision", 1, []server.ConnRecord{collided}, Pass, 0},
		{"grease without ECH", 1, []server.ConnRecord{{ECH: server.ECHNone, OuterSNI: PlainName, Transport: "tcp", ALPN: "h2"}}, Fail, 0},
		{"retry", 2, []server.ConnRecord{staleRej, acc(StaleName, "tcp", "h2", id(20))}, Pass, 1},
		{"retry twice", 2, []server.ConnRecord{staleRej, staleRej, acc(StaleName, "tcp", "h2", id(20)), acc(StaleName, "tcp", "h2", id(20))}, Pass, 2},
		{"retry never recovers", 2, []server.ConnRecord{staleRej}, Fail, 0},
		{"retry without rejection", 2, []server.ConnRecord{acc(StaleName, "tcp", "h2", id(20))}, Fail, 0},
		{"h3", 3, []server.ConnRecord{acc(H3Name, "quic", "h3", nil)}, Pass, 0},
		{"h3 fell back to tcp", 3, []server.ConnRecord{quicGrease, acc(H3Name, "tcp", "h2", id(20))}, Fail, 0},
	} {
		v := l.judge(Cases[tc.c], tc.recs)
		if v.Outcome != tc.want || v.Retries != tc.retries {
			t.Errorf("%s: outcome %s retries %d, want %s %d (%s)", tc.name, v.Outcome, v.Retries, tc.want, tc.retries, v.Why)
		}
	}
}

func TestDisagreements(t *testing.T) {
	l := &Lab{StaleID: 10, CurrentID: 20}
	yes, no := true, false
	real := func(inner string, cid uint8, acc *bool) ObservedFlow {
		return ObservedFlow{ID: 1, Client: "127.0.0.1:4000", Transport: "tcp", SNI: PublicName, ECH: observe.ECHReal,
			ConfigID: id(cid), InnerSNI: inner, Accepted: acc}
	}
	grease := ObservedFlow{ID: 1, Client: "127.0.0.1:4000", Transport: "tcp", SNI: PlainName, ECH: observe.ECHGreaseOrKey, ConfigID: id(77)}
	v := Verdict{Client: "127.0.0.1:4000", Transport: "tcp"}
	leaky := grease
	leaky.ECH = ""
	public := grease
	public.SNI = PublicName
	for _, tc := range []struct {
		name  string
		c     int
		flows []ObservedFlow
		agree bool
	}{
		{"ech", 0, []ObservedFlow{real(SecretName, 20, &yes)}, true},
		{"ech not confirmed", 0, []ObservedFlow{real(SecretName, 20, &no)}, false},
		{"ech no ServerHello", 0, []ObservedFlow{real(SecretName, 20, nil)}, false},
		{"ech wrong inner", 0, []ObservedFlow{real(StaleName, 20, &yes)}, false},
		{"ech unopened", 0, []ObservedFlow{{ID: 1, Client: "127.0.0.1:4000", Transport: "tcp", SNI: PublicName, ECH: observe.ECHGreaseOrKey}}, false},
		{"ech not captured", 0, nil, false},
		{"grease", 1, []ObservedFlow{grease}, true},
		{"grease without ECH", 1, []ObservedFlow{leaky}, false},
		{"grease public name", 1, []ObservedFlow{public}, false},
		{"retry", 2, []ObservedFlow{real(StaleName, 10, &no), real(StaleName, 20, &yes)}, true},
		{"retry no stale flow", 2, []ObservedFlow{real(StaleName, 20, &yes)}, false},
		{"h3", 3, []ObservedFlow{real(H3Name, 20, &yes)}, true},
	} {
		o := &Observed{Flows: tc.flows, Deciding: -1}
		for i, f := range tc.flows {
			if f.Client == v.Client && f.ECH != "" && (tc.c != 2 || *f.ConfigID == 20) {
				o.Deciding = i
			}
		}
		if tc.c == 1 && len(tc.flows) > 0 {
			o.Deciding = 0
		}
		d := l.disagreements(Cases[tc.c], v, o)
		if (len(d) == 0) != tc.agree {
			t.Errorf("%s: disagreements %q, want agreement %v", tc.name, d, tc.agree)
		}
	}
}

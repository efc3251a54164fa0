package conformance

// OriginTargetSuffix ends the name of a case OriginTarget made.
const OriginTargetSuffix = "-origin-target"

// OriginTarget returns the cases whose HTTPS records are all ServiceMode
// records at the HTTPS owner with the default TargetName
// (public.lab.test), each with TargetName secret.lab.test (the origin)
// instead, named NAME-origin-target. Neither browser uses a record whose
// TargetName is another name than the origin (both send GREASE in
// baseline), so these twins are what shows how a browser copes with the
// case's configs and server.
func OriginTarget(cases []Case) []Case {
	var out []Case
	for _, c := range cases {
		recs := c.DNS.records()
		ok := len(recs) > 0
		for _, r := range recs {
			ok = ok && (r.Owner == "" || r.Owner == OwnerName) && r.Priority > 0 && r.Target == ""
		}
		if !ok {
			continue
		}
		t := c
		t.Name += OriginTargetSuffix
		t.Summary += "; TargetName secret.lab.test (the origin)"
		t.DNS.Records = make([]HTTPSRecord, len(recs))
		for i, r := range recs {
			r.ECH = append([]ConfigKind(nil), r.ECH...)
			r.Target = "secret"
			t.DNS.Records[i] = r
		}
		out = append(out, t)
	}
	return out
}

package adversary

import (
	"errors"
	"fmt"
)

// ErrSpec is matched (errors.Is) by every error Parse and ParseGrid
// return; the sentinels below say which rule a spec broke.
var ErrSpec = errors.New("adversary: bad policy spec")

// Sentinels wrapped by SpecError.
var (
	ErrUnknownKind = errors.New("unknown policy kind")
	ErrArgCount    = errors.New("wrong number of arguments")
	ErrBadArg      = errors.New("bad argument")
	ErrEmpty       = errors.New("empty spec")
)

// SpecError is a policy spec that does not parse: Spec is the column (or
// the whole grid) being read, Policy the policy in it at fault ("" when
// the fault is the column itself), Reason what is wrong.
type SpecError struct {
	Spec   string
	Policy string
	Reason string
	Err    error // one of the sentinels above
}

func (e *SpecError) Error() string {
	if e.Policy == "" || e.Policy == e.Spec {
		return fmt.Sprintf("adversary: spec %q: %s", e.Spec, e.Reason)
	}
	return fmt.Sprintf("adversary: policy %q in spec %q: %s", e.Policy, e.Spec, e.Reason)
}

// Unwrap returns the sentinel naming the broken rule.
func (e *SpecError) Unwrap() error { return e.Err }

// Is makes every SpecError match ErrSpec.
func (e *SpecError) Is(target error) bool { return target == ErrSpec }

package anomaly

import "fmt"

// Kind says what sort of anomaly a score is about.
type Kind uint8

// Kinds. The first six have their own detector; Pattern is a window of
// values unlike any the series has shown (the pattern memory), when no
// single-kind detector explains it better.
const (
	KindNone       Kind = iota
	KindSpike           // a short excursion
	KindLevelShift      // a step to another level
	KindDrift           // a ramp away from the usual level
	KindStuck           // the same value over and over
	KindNoise           // a change of variance
	KindMissing         // a gap longer than the learned cadence
	KindPattern         // a shape of values not seen before
	numKinds
)

var kindNames = [numKinds]string{"", "spike", "level_shift", "drift", "stuck", "noise", "missing", "pattern"}

// String returns the kind's name as the dashboard shows it ("" for
// KindNone).
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MarshalText writes the name.
func (k Kind) MarshalText() ([]byte, error) { return marshalName(kindNames[:], k, "kind") }

// UnmarshalText reads a name.
func (k *Kind) UnmarshalText(b []byte) error { return unmarshalName(kindNames[:], b, k, "kind") }

// marshalName writes the name of e, an enumeration with names.
func marshalName[E ~uint8](names []string, e E, what string) ([]byte, error) {
	if int(e) >= len(names) {
		return nil, fmt.Errorf("anomaly: unknown %s %d", what, uint8(e))
	}
	return []byte(names[e]), nil
}

// unmarshalName sets *e to the value named b.
func unmarshalName[E ~uint8](names []string, b []byte, e *E, what string) error {
	for i, n := range names {
		if n == string(b) {
			*e = E(i)
			return nil
		}
	}
	return fmt.Errorf("anomaly: unknown %s %q", what, b)
}

// Kinds returns every kind a detector reports, KindNone excluded.
func Kinds() []Kind {
	return []Kind{KindSpike, KindLevelShift, KindDrift, KindStuck, KindNoise, KindMissing, KindPattern}
}

// Package defaults fills zero fields with their defaults: "a zero field
// means its default" is the rule of every Tributary config and options
// struct, and this is its one spelling.
package defaults

// Set sets *p to def when *p is its type's zero value.
func Set[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

package merge

import (
	"fmt"
	"slices"
	"sync"
)

// Registry maps strategy names to strategies. There is no global registry:
// the embedding program builds one, registers its own strategies and hands
// it to whatever resolves namespaces. It is safe for concurrent use.
type Registry struct {
	// mu guards byName. Registration happens at startup; lookups on every
	// namespace resolution.
	mu     sync.RWMutex
	byName map[string]Strategy
}

// maxNameLen bounds strategy names, which appear in config files and logs.
const maxNameLen = 64

// NewRegistry returns a registry holding the built-in strategies lww,
// siblings, counter and set.
func NewRegistry() *Registry {
	r := &Registry{byName: make(map[string]Strategy, 4)}
	for _, s := range []Strategy{
		&valueStrategy{name: NameLWW, lww: true},
		&valueStrategy{name: NameSiblings},
		counterStrategy{},
		setStrategy{},
	} {
		r.byName[s.Name()] = s
	}
	return r
}

// Register adds s under s.Name(). The name must match [a-z][a-z0-9_.-]* and
// be at most 64 bytes (ErrInvalidName) and not be taken (ErrDuplicate).
func (r *Registry) Register(s Strategy) error {
	if s == nil {
		return fmt.Errorf("%w: nil strategy", ErrInvalidName)
	}
	name := s.Name()
	if !validName(name) {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byName[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	r.byName[name] = s
	return nil
}

// Lookup returns the strategy registered under name, or an error wrapping
// ErrUnknownStrategy that names it.
func (r *Registry) Lookup(name string) (Strategy, error) {
	r.mu.RLock()
	s, ok := r.byName[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownStrategy, name)
	}
	return s, nil
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	r.mu.RUnlock()
	slices.Sort(names)
	return names
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

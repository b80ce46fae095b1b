// Package testutil holds helpers shared by ecache's tests.
package testutil

import "go.uber.org/goleak"

// LeakOptions are the goleak options every package that links gnet needs:
// gnet's worker-pool dependency (ants) starts two goroutines when it loads
// that live for the whole process.
func LeakOptions(extra ...goleak.Option) []goleak.Option {
	return append([]goleak.Option{
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	}, extra...)
}

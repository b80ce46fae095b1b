package client

// StartFakeServer starts the in-memory fake server of the tests on a
// loopback port, for the examples. Its namespaces are "default" (lww),
// "siblings", "counters" and "sets". It returns the server's address and a
// function that stops it.
func StartFakeServer() (addr string, stop func()) {
	fs, err := newFakeServer(fakeOptions{})
	if err != nil {
		panic(err)
	}
	return fs.Addr(), fs.Close
}

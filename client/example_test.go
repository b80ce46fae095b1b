package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"slices"

	"github.com/ecachedb/ecache/client"
)

// connect starts the in-memory fake server the examples run against and
// returns a client for it, and a function that closes both. Against a real
// node, pass its address in Config.Addrs as ExampleNew does.
func connect() (*client.Client, func()) {
	addr, stop := client.StartFakeServer()
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{addr}
	c, err := client.New(context.Background(), cfg)
	if err != nil {
		stop()
		log.Fatal(err)
	}
	return c, func() { c.Close(); stop() }
}

func ExampleNew() {
	addr, stop := client.StartFakeServer() // a real deployment: "10.0.0.1:7070", ...
	defer stop()

	cfg := client.DefaultConfig()
	cfg.Addrs = []string{addr}
	c, err := client.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err) // names every address tried and why it failed
	}
	defer c.Close()

	if err := c.Ping(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("connected")
	// Output: connected
}

// Put returns the causal context of the write, so the next write of the key
// can replace it without reading it first.
func ExampleClient_Put() {
	c, done := connect()
	defer done()
	ctx := context.Background()

	cc, err := c.Put(ctx, "greeting", []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Put(ctx, "greeting", []byte("hello, world"), client.WithCausalContext(cc)); err != nil {
		log.Fatal(err)
	}
	it, err := c.Get(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", it.Values[0])
	// Output: hello, world
}

// In a siblings namespace, writes that did not see each other are both kept.
// Get returns them all with a context that covers them; writing the merged
// value back with that context replaces them.
func ExampleClient_Get() {
	c, done := connect()
	defer done()
	ctx, ns := context.Background(), client.WithNamespace("siblings")

	// Two writers add to the same cart without reading it first.
	for _, v := range []string{"pear", "apple"} {
		if _, err := c.Put(ctx, "cart:42", []byte(v), ns); err != nil {
			log.Fatal(err)
		}
	}
	it, err := c.Get(ctx, "cart:42", ns)
	if err != nil {
		log.Fatal(err)
	}
	slices.SortFunc(it.Values, bytes.Compare)
	fmt.Printf("%d siblings: %s\n", len(it.Values), it.Values)

	merged := bytes.Join(it.Values, []byte(","))
	if _, err := c.Put(ctx, "cart:42", merged, ns, client.WithCausalContext(it.Context)); err != nil {
		log.Fatal(err)
	}
	it, err = c.Get(ctx, "cart:42", ns)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d value: %s\n", len(it.Values), it.Values)

	_, err = c.Get(ctx, "cart:43", ns)
	fmt.Println(errors.Is(err, client.ErrNotFound))
	// Output:
	// 2 siblings: [apple pear]
	// 1 value: [apple,pear]
	// true
}

func ExampleClient_Incr() {
	c, done := connect()
	defer done()
	ctx, ns := context.Background(), client.WithNamespace("counters")

	if _, err := c.Incr(ctx, "page:home", 5, ns); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Decr(ctx, "page:home", 2, ns); err != nil {
		log.Fatal(err)
	}
	n, err := c.Incr(ctx, "page:home", 0, ns) // delta 0 reads
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)

	// A counter is not a value: Get on a counter namespace is a wrong type.
	_, err = c.Get(ctx, "page:home", ns)
	fmt.Println(errors.Is(err, client.ErrWrongType))
	// Output:
	// 3
	// true
}

func ExampleClient_SAdd() {
	c, done := connect()
	defer done()
	ctx, ns := context.Background(), client.WithNamespace("sets")

	if err := c.SAdd(ctx, "tags:42", [][]byte{[]byte("red"), []byte("green"), []byte("blue")}, ns); err != nil {
		log.Fatal(err)
	}
	if err := c.SRem(ctx, "tags:42", [][]byte{[]byte("green")}, ns); err != nil {
		log.Fatal(err)
	}
	members, err := c.SMembers(ctx, "tags:42", ns) // sorted bytewise
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", members)
	// Output: [blue red]
}

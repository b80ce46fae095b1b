package gnetx

import "testing"

func TestQueueFIFOAcrossGrowthAndWrap(t *testing.T) {
	q := NewQueue[int]()
	for i := range 100 {
		q.Push(i)
	}
	for i := range 50 {
		if v, ok := q.Pop(); !ok || v != i {
			t.Fatalf("pop = %d, %v; want %d", v, ok, i)
		}
	}
	for i := 100; i < 250; i++ { // wraps, then grows past the initial ring
		q.Push(i)
	}
	for i := 50; i < 250; i++ {
		if v, ok := q.Pop(); !ok || v != i {
			t.Fatalf("pop = %d, %v; want %d", v, ok, i)
		}
	}
}

func TestQueueCloseDrainsThenStops(t *testing.T) {
	q := NewQueue[string]()
	q.Push("last")
	q.Close()
	if v, ok := q.Pop(); !ok || v != "last" {
		t.Fatalf("pop after close = %q, %v; want the queued element", v, ok)
	}
	if _, ok := q.Pop(); ok {
		t.Fatal("pop on a closed, empty queue returned an element")
	}
}

func TestQueueCloseWakesWaiters(t *testing.T) {
	q := NewQueue[int]()
	done := make(chan bool)
	go func() {
		_, ok := q.Pop()
		done <- ok
	}()
	q.Close()
	if <-done {
		t.Fatal("a waiter woken by Close got an element")
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/netproto"
)

// readFrame reads one response frame from a raw connection.
func readFrame(t *testing.T, c net.Conn) (netproto.Frame, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, netproto.HeaderSize)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return netproto.Frame{}, err
	}
	h, err := netproto.ParseHeader(hdr)
	if err != nil {
		t.Fatalf("server sent a bad header: %v", err)
	}
	body := make([]byte, h.BodyLen)
	if _, err := io.ReadFull(c, body); err != nil {
		return netproto.Frame{}, err
	}
	return netproto.Frame{Header: h, Body: body}, nil
}

// expectErrorThenClose reads one error frame with the given code and then EOF.
func expectErrorThenClose(t *testing.T, c net.Conn, want netproto.Code) {
	t.Helper()
	f, err := readFrame(t, c)
	if err != nil {
		t.Fatalf("reading the error frame: %v", err)
	}
	var e netproto.ErrorBody
	if !f.IsError() || e.DecodeBody(f.Body) != nil || e.Code != want {
		t.Fatalf("got frame %+v body %+v, want error %v", f.Header, e, want)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("connection not closed after the error: n=%d err=%v", n, err)
	}
}

// TestE2EBadInputIsolated: garbage, an oversized length, a truncated frame
// and a slow partial frame, each on its own raw connection to the real
// binary, while an SDK client keeps writing and reading on another: the bad
// connections get their error and are closed; the good client sees only
// correct answers.
func TestE2EBadInputIsolated(t *testing.T) {
	p := startServe(t, t.TempDir(), "--max-value-size", "64KiB")
	good := newClient(t, p)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var goodOps int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key, val := fmt.Sprint("good", i%50), fmt.Sprint("v", i)
			if _, err := good.Put(ctx, key, []byte(val)); err != nil {
				t.Errorf("good client put: %v", err)
				return
			}
			it, err := good.Get(ctx, key)
			if err != nil || len(it.Values) != 1 || string(it.Values[0]) != val {
				t.Errorf("good client read %+v %v, want %s", it, err, val)
				return
			}
			goodOps++
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// Garbage.
	c := dial()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	expectErrorThenClose(t, c, netproto.CodeMalformed)

	// An oversized length: refused from the header alone, before any body.
	c = dial()
	c.Write(netproto.AppendHeader(nil, netproto.Header{Version: netproto.Version, Opcode: netproto.OpPut, RequestID: 9, BodyLen: 1 << 30}))
	expectErrorThenClose(t, c, netproto.CodeFrameTooLarge)

	// A truncated frame, then the client goes away: nothing to answer, and
	// the server carries on (the good client proves it).
	c = dial()
	full := netproto.AppendRequest(nil, netproto.OpPut, 1, &netproto.PutRequest{Namespace: []byte("default"), Key: []byte("t"), Value: []byte("never")})
	c.Write(full[:len(full)-3])
	c.Close()

	// A slow partial frame, byte by byte, is answered once complete.
	c = dial()
	req := netproto.AppendRequest(nil, netproto.OpPut, 77, &netproto.PutRequest{Namespace: []byte("default"), Key: []byte("slow"), Value: []byte("steady")})
	for i := range req {
		if _, err := c.Write(req[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	f, err := readFrame(t, c)
	if err != nil || f.IsError() || f.RequestID != 77 || f.Opcode != netproto.OpPut {
		t.Fatalf("slow frame answered with %+v %v", f.Header, err)
	}

	close(stop)
	wg.Wait()
	if goodOps == 0 {
		t.Fatal("the good client made no progress")
	}
	it, err := good.Get(ctx, "slow")
	if err != nil || string(it.Values[0]) != "steady" {
		t.Fatalf("slow write not stored: %+v %v", it, err)
	}
	if _, err := good.Get(ctx, "t"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("truncated write was applied: %v", err)
	}
}

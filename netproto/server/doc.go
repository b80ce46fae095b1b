// Package server serves the ecache binary protocol (package netproto) over
// TCP with gnet v2 event loops. It frames, limits and schedules requests;
// a netproto.Handler (package node) decides what they mean.
//
// It lives apart from netproto so that programs using only the codec — the
// Go SDK above all — do not link gnet and its process-wide goroutines.
package server

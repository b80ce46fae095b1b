// Package node is ecache's composition root: it opens a node's store,
// resolves its namespaces to merge strategies, serves the binary protocol
// and coordinates every request.
//
// Today a node is a single replica: it coordinates each write itself,
// issuing exactly one new dot per write (merge.Strategy.Apply under the
// store's per-key lock), and answers reads from its own store. The cluster
// issue extends Node with routing, replication, quorums, read repair and
// hinted handoff; the request paths here are where that plugs in.
//
// Node implements netproto.Handler. Reads that the memory tier can answer
// (and every operation in a memory-only node) run on the network event
// loop; anything that may touch the disk runs on the server's worker pool.
package node

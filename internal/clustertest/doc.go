// Package clustertest runs ecache clusters inside one test process over a
// seeded, faulty network.
//
// A Network sits between the nodes of a test on both of their paths: the
// peer data path (forwarding, replication, fetches, hints), through the
// client.Config.Dialer seam, and gossip, through gossip.Config's
// WrapTransport. Each directed link a→b between node indexes can be cut, or
// drop, duplicate and delay messages: request frames a sends b and the
// response frames b sends back on a's connections (judged by the b→a
// link), and memberlist packets a sends b. A cut link also refuses new
// connections (data and gossip streams); the other faults do not touch
// gossip's TCP streams, which carry no message boundaries the network
// could see.
//
// Decisions are reproducible from the seed: the k-th message on a link
// (per direction and path) always meets the same draw, whatever the timing
// of other links. Timing itself is real, so tests poll for the states they
// want with a deadline (Eventually) and never sleep.
//
// Cluster starts K node.Nodes on 127.0.0.1 with free ports, wired to one
// Network, and can stop and restart them with their data.
package clustertest

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/node"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// newClusterCmd is `ecache cluster`: members and locate, both reading a
// node's admin GET /v1/cluster.
func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect a cluster through a node's admin endpoint",
	}
	var admin string
	cmd.PersistentFlags().StringVar(&admin, "admin", envOr("ECACHE_ADMIN", "127.0.0.1:7071"), "admin address of any node (env ECACHE_ADMIN)")

	members := &cobra.Command{
		Use:   "members",
		Short: "List the members, their state, address and partitions (primary/replica)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := fetchCluster(cmd.Context(), admin)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tID\tSTATE\tCLIENT\tPRIMARY\tREPLICA")
			for _, m := range info.Members {
				name := m.Name
				if m.Local {
					name += "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", name, m.ID, m.State, m.ClientAddr, m.Primary, m.Replica)
			}
			return tw.Flush()
		},
	}

	var ns string
	locate := &cobra.Command{
		Use:   "locate KEY",
		Short: "Print the key's partition and its replicas in preference order",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := fetchCluster(cmd.Context(), admin)
			if err != nil {
				return err
			}
			p, owners, err := locateKey(info, ns, args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "partition %d of %d, replicas %d\n", p, info.Partitions, info.Replicas)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tNAME\tID\tCLIENT")
			for i, m := range owners {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", i+1, m.Name, m.ID, m.ClientAddr)
			}
			return tw.Flush()
		},
	}
	locate.Flags().StringVar(&ns, "ns", envOr("ECACHE_NS", node.DefaultNamespace), "namespace (env ECACHE_NS)")

	cmd.AddCommand(members, locate)
	return cmd
}

// fetchCluster reads GET /v1/cluster from the admin server at addr.
func fetchCluster(ctx context.Context, addr string) (node.ClusterInfo, error) {
	var info node.ClusterInfo
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(url, "/")+"/v1/cluster", nil)
	if err != nil {
		return info, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return info, fmt.Errorf("admin %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return info, fmt.Errorf("admin %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return info, fmt.Errorf("admin %s: %s", addr, e.Error)
		}
		return info, fmt.Errorf("admin %s: GET /v1/cluster: %s", addr, resp.Status)
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return info, fmt.Errorf("admin %s: decoding /v1/cluster: %w", addr, err)
	}
	return info, nil
}

// locateKey computes key's partition in ns and its replicas, in
// preference order, from the ring of info's live members: the same ring
// the nodes build.
func locateKey(info node.ClusterInfo, ns, key string) (uint32, []node.ClusterMember, error) {
	if ns == "" {
		ns = node.DefaultNamespace
	}
	byID := map[vclock.NodeID]node.ClusterMember{}
	var ids []vclock.NodeID
	for _, m := range info.Members {
		if m.State != "alive" {
			continue
		}
		id, err := vclock.ParseNodeID(m.ID)
		if err != nil {
			return 0, nil, fmt.Errorf("member %s: %w", m.Name, err)
		}
		byID[id] = m
		ids = append(ids, id)
	}
	r, err := ring.New(info.Partitions, info.Replicas, ids)
	if err != nil {
		return 0, nil, err
	}
	p := storage.PartitionOf([]byte(ns), []byte(key), info.Partitions)
	var out []node.ClusterMember
	for _, id := range r.Owners(p) {
		out = append(out, byID[id])
	}
	return p, out, nil
}

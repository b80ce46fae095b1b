// Command ecache is the single ecache binary: `ecache serve` runs a node;
// the data commands (get, put, del, incr, …) talk to one; `ecache version`
// prints the build. It holds flag parsing and wiring only.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ecache:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "ecache",
		Short:         "ecache: a leaderless, eventually consistent, replicated cache",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newVersionCmd())
	root.AddCommand(newBenchCmd())
	root.AddCommand(newClusterCmd())
	for _, c := range newDataCmds() {
		root.AddCommand(c)
	}
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the ecache version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "ecache", version)
			return err
		},
	}
}

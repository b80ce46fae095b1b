package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ecachedb/ecache/vclock"
)

// nodeIDFile is the file in the data directory that holds the node's ID.
const nodeIDFile = "NODE_ID"

// loadOrCreateNodeID returns the ID kept in dir, creating the directory and
// a fresh ID on first use. The file is written to a temporary name, fsynced
// and renamed, so a crash never leaves a half-written identity behind.
func loadOrCreateNodeID(fs vfs.FS, dir string) (vclock.NodeID, error) {
	path := fs.PathJoin(dir, nodeIDFile)
	f, err := fs.Open(path)
	if err == nil {
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 64))
		if err != nil {
			return 0, fmt.Errorf("%w: reading %s: %w", ErrDisk, path, err)
		}
		id, err := vclock.ParseNodeID(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%w: opening %s: %w", ErrDisk, path, err)
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("%w: creating %s: %w", ErrDisk, dir, err)
	}
	id := vclock.NewNodeID()
	tmp := path + ".tmp"
	if err := writeSynced(fs, tmp, []byte(id.String()+"\n")); err != nil {
		return 0, fmt.Errorf("%w: writing %s: %w", ErrDisk, tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("%w: renaming %s: %w", ErrDisk, tmp, err)
	}
	d, err := fs.OpenDir(dir)
	if err != nil {
		return 0, fmt.Errorf("%w: opening %s: %w", ErrDisk, dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return 0, fmt.Errorf("%w: syncing %s: %w", ErrDisk, dir, err)
	}
	return id, nil
}

func writeSynced(fs vfs.FS, path string, b []byte) error {
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

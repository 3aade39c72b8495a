package bus

import (
	"fmt"
	"os"
)

// dataDirPerm is the mode of a data directory we create: the store is the process's own.
const dataDirPerm = 0o750

// checkDataDir makes sure dir is a directory this process can write to (creating it and its
// parents if missing), so that an unusable data dir stops the embedded server at once with its
// cause (a file in the way, a read-only or full file system, a permission) instead of a
// JetStream that never starts. It writes and removes a small file to prove it.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, dataDirPerm); err != nil {
		return fmt.Errorf("%w %s: %w", ErrDataDir, dir, err)
	}
	if err := probeDataDir(dir, 4<<10); err != nil {
		return fmt.Errorf("%w %s: %w", ErrDataDir, dir, err)
	}
	return nil
}

// probeDataDir writes n bytes to a new file in dir, syncs and removes it: an error says the
// store cannot write there now (ENOSPC, EROFS, EACCES, EIO...).
func probeDataDir(dir string, n int) (err error) {
	f, err := os.CreateTemp(dir, ".tickwire-probe-*")
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if rerr := os.Remove(f.Name()); err == nil {
			err = rerr
		}
	}()
	buf := make([]byte, min(n, 64<<10))
	for left := n; left > 0; left -= len(buf) {
		if _, err := f.Write(buf[:min(left, len(buf))]); err != nil {
			return err
		}
	}
	return f.Sync()
}

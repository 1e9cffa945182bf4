package blockfs

// replayed holds, in read-only mounts, the blocks recovered from the
// journal (they are never written to the device).
func (f *FS) replayJournal() error {
	return errNotYet
}

var errNotYet = ErrNeedsRecovery

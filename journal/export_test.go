package journal

// crash drops the journal as a killed process would: its descriptors and
// lock go, nothing more is synced or written.
func (j *Journal) crash() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	j.unlock()
}

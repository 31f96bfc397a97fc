package bolt

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// checkFile refuses a database file shorter than its own meta page says
// (a truncated copy, a disk that filled up): bbolt would map it and die of
// SIGBUS on the first page past the end, a fault no recover catches.
// A file too short to hold its meta pages is left to bbolt, which says so.
func checkFile(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// Page header: id u64, flags u16, count u16, overflow u32 (16 bytes);
	// then the meta: magic, version, page size (u32 each), flags u32,
	// root bucket (16), freelist (8), high-water page id (8), txid (8),
	// checksum (8, FNV-64a of the 56 bytes before it).
	const hdr, metaLen = 16, 64
	buf := make([]byte, hdr+metaLen)
	if _, err := f.ReadAt(buf, 0); err != nil {
		if err == io.EOF {
			return nil
		}
		return err
	}
	pageSize := int64(binary.LittleEndian.Uint32(buf[hdr+8:]))
	var best *[2]uint64 // txid, high-water mark of the newer valid meta page
	for i := int64(0); i < 2; i++ {
		if _, err := f.ReadAt(buf, i*pageSize); err != nil {
			continue
		}
		m := buf[hdr:]
		if binary.LittleEndian.Uint32(m[0:]) != 0xED0CDAED {
			continue
		}
		h := fnv.New64a()
		h.Write(m[:56])
		if h.Sum64() != binary.LittleEndian.Uint64(m[56:]) {
			continue
		}
		txid, hwm := binary.LittleEndian.Uint64(m[48:]), binary.LittleEndian.Uint64(m[40:])
		if best == nil || txid > best[0] {
			best = &[2]uint64{txid, hwm}
		}
	}
	if best == nil || pageSize <= 0 {
		return nil
	}
	if want := int64(best[1]) * pageSize; st.Size() < want {
		return fmt.Errorf("%s is truncated: %d bytes, its header says %d; restore it from a copy, or move it away to start with an empty store", path, st.Size(), want)
	}
	return nil
}

package preprocess

import (
	"io"
)

// chunkWriter writes a staged chunk on a goroutine of its own, a batch of
// records at a time, so that the encoding goroutine can sum the rows'
// statistics while their values are in its cache and the bytes (hashed
// and copied by the bucket) go to the other core.
type chunkWriter struct {
	out  chan []byte
	free chan []byte
	done chan struct{}
	err  error // the first write error; read after done
}

func startChunkWriter(w io.Writer) *chunkWriter {
	cw := &chunkWriter{out: make(chan []byte, 2), free: make(chan []byte, 4), done: make(chan struct{})}
	go func() {
		defer close(cw.done)
		for b := range cw.out {
			if cw.err == nil {
				_, cw.err = w.Write(b)
			}
			select {
			case cw.free <- b[:0]:
			default:
			}
		}
	}()
	return cw
}

// buffer returns an empty buffer to fill and give to write.
func (cw *chunkWriter) buffer() []byte {
	select {
	case b := <-cw.free:
		return b
	default:
		return make([]byte, 0, 256<<10)
	}
}

// write queues b; it is not to be used after.
func (cw *chunkWriter) write(b []byte) { cw.out <- b }

// close waits for the queued writes and returns the first error.
func (cw *chunkWriter) close() error {
	close(cw.out)
	<-cw.done
	return cw.err
}

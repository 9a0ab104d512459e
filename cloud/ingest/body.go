package ingest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

type encoding int

const (
	encIdentity encoding = iota
	encZstd
	encGzip
)

func contentEncoding(h string) (encoding, *httpError) {
	switch strings.ToLower(strings.TrimSpace(h)) {
	case "", "identity":
		return encIdentity, nil
	case "zstd":
		return encZstd, nil
	case "gzip", "x-gzip":
		return encGzip, nil
	}
	return 0, fail(http.StatusUnsupportedMediaType, "unsupported content encoding %q: use zstd, gzip or identity", h)
}

// preGrow bounds what readBody allocates ahead of the bytes that arrive:
// a client that announces a large body and trickles it costs what it has
// sent, not what it announced.
const preGrow = 256 << 10

// readBody reads the body, at most MaxBytes, into a pooled buffer, within
// ReadTimeout.
func (in *Ingest) readBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, *httpError) {
	// Not supported by every ResponseWriter (a test recorder): then the
	// server's own read timeout is the only one.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(in.opts.ReadTimeout))
	buf := in.getBuf()
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, preGrow)))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, int64(in.opts.MaxBytes)))
	if err != nil {
		in.putBuf(buf)
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return nil, fail(http.StatusRequestEntityTooLarge, "body over %d bytes: send smaller batches", in.opts.MaxBytes)
		case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
			in.m.slowBodies.Inc()
			return nil, fail(http.StatusRequestTimeout, "body not received within %v (ingest.read_timeout): send smaller batches on a slow link", in.opts.ReadTimeout)
		}
		return nil, fail(http.StatusBadRequest, "reading the body: %v", err)
	}
	return buf, nil
}

func (in *Ingest) getBuf() *bytes.Buffer {
	if b, ok := in.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

func (in *Ingest) putBuf(b *bytes.Buffer) { in.bufs.Put(b) }

// rawPool recycles decompression outputs.
var rawPool sync.Pool // *[]byte

func (in *Ingest) getRaw() []byte {
	if p, ok := rawPool.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

func (in *Ingest) putRaw(b []byte) {
	if cap(b) == 0 || cap(b) > 2*in.opts.MaxBytes {
		return
	}
	b = b[:0]
	rawPool.Put(&b)
}

var gzPool sync.Pool // *gzip.Reader

// decompress undoes the Content-Encoding, refusing output over MaxBytes
// without producing much more of it: zstd checks frame headers and stops
// within a frame at the limit (a run of frames may overshoot it by at
// most one frame's worth, itself bounded by the limit); gzip reads through
// a limit.
func (in *Ingest) decompress(enc encoding, body []byte) ([]byte, *httpError) {
	limit := in.opts.MaxBytes
	tooLarge := func() *httpError {
		return fail(http.StatusRequestEntityTooLarge, "decompressed body over %d bytes: send smaller batches", limit)
	}
	switch enc {
	case encZstd:
		out, err := in.zdec.DecodeAll(body, in.getRaw())
		if err != nil {
			in.putRaw(out)
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
				return nil, tooLarge()
			}
			return nil, fail(http.StatusBadRequest, "zstd: %v", err)
		}
		if len(out) > limit {
			in.putRaw(out)
			return nil, tooLarge()
		}
		return out, nil
	case encGzip:
		zr, _ := gzPool.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(body))
		} else {
			err = zr.Reset(bytes.NewReader(body))
		}
		if err != nil {
			return nil, fail(http.StatusBadRequest, "gzip: %v", err)
		}
		defer gzPool.Put(zr)
		w := bytes.NewBuffer(in.getRaw())
		_, err = w.ReadFrom(io.LimitReader(zr, int64(limit)+1))
		out := w.Bytes()
		if err != nil {
			in.putRaw(out)
			return nil, fail(http.StatusBadRequest, "gzip: %v", err)
		}
		if len(out) > limit {
			in.putRaw(out)
			return nil, tooLarge()
		}
		return out, nil
	}
	return body, nil
}

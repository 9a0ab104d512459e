package kinesisapi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Shard iterators and ListShards NextTokens are sealed with AES-256-GCM:
//
//	base64(version 0x01 | 12-byte random nonce | ciphertext | 16-byte tag)
//
// The plaintext is a kind byte ('I' iterator, 'L' list token), the issue
// time in Unix milliseconds (8 bytes, big-endian) and the payload: for an
// iterator the store Position (stream incarnation 8, shard index 4,
// position 8, stream name), for a token the listing state. The seal makes
// them opaque and unforgeable; the issue time makes them expire (5
// minutes). An iterator of a 128-character stream name is 248 characters.

const (
	sealVersion  = 1
	kindIterator = 'I'
	kindToken    = 'L'
)

var errBadSeal = errors.New("kinesisapi: bad seal")

type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead}, nil
}

func (s *sealer) seal(kind byte, issued time.Time, payload []byte) string {
	pt := make([]byte, 0, 9+len(payload))
	pt = append(pt, kind)
	pt = binary.BigEndian.AppendUint64(pt, uint64(issued.UnixMilli()))
	pt = append(pt, payload...)
	out := make([]byte, 1+12, 1+12+len(pt)+16)
	out[0] = sealVersion
	if _, err := rand.Read(out[1:13]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	out = s.aead.Seal(out, out[1:13], pt, nil)
	return base64.StdEncoding.EncodeToString(out)
}

func (s *sealer) open(kind byte, token string) (issued time.Time, payload []byte, err error) {
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil || len(raw) < 1+12+16+9 || raw[0] != sealVersion {
		return time.Time{}, nil, errBadSeal
	}
	pt, err := s.aead.Open(nil, raw[1:13], raw[13:], nil)
	if err != nil || len(pt) < 9 || pt[0] != kind {
		return time.Time{}, nil, errBadSeal
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(pt[1:9]))), pt[9:], nil
}

package store

import (
	"encoding/json"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Blobs are zstd-compressed JSON: a snapshot of a large server is
// megabytes of repetitive text. The encoder and decoder are safe for
// concurrent EncodeAll/DecodeAll.
var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
)

// packJSON marshals v, redacts it and compresses it.
func packJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if b, err = redactJSON(b); err != nil {
		return nil, err
	}
	return zenc.EncodeAll(b, nil), nil
}

// unpackJSON reverses packJSON into v.
func unpackJSON(blob []byte, v any) error {
	b, err := zdec.DecodeAll(blob, nil)
	if err != nil {
		return fmt.Errorf("store: decompressing: %w", err)
	}
	return json.Unmarshal(b, v)
}

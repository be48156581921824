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

func compress(b []byte) []byte {
	if b == nil {
		return nil
	}
	return zenc.EncodeAll(b, nil)
}

// unpackJSON decompresses a blob into v.
func unpackJSON(blob []byte, v any) error {
	b, err := zdec.DecodeAll(blob, nil)
	if err != nil {
		return fmt.Errorf("store: decompressing: %w", err)
	}
	return json.Unmarshal(b, v)
}

//go:build !unix

package fanout

import "errors"

const rawSupported = false

func rawWrite(uintptr, []byte) (int, error) { return 0, errors.New("fanout: raw writes need unix") }
